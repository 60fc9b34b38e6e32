// `--load` (buildx: -o type=docker without dest): the docker-archive handed to a docker daemon
// through its API (POST /images/load on DOCKER_HOST or the default socket), else to
// `podman load`, as buildx with a docker or podman driver would.
#include "exporter/daemon_load.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/fs.h"
#include "base/process.h"

namespace ocib::exporter {

namespace {

constexpr const char* kDefaultSocket = "/var/run/docker.sock";

bool is_socket(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

size_t collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

Status docker_load(const LoadTarget& t, const std::string& archive) {
  UniqueFd in(::open(archive.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return Error::from_errno("open " + archive, errno);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return Error::from_errno("stat " + archive, errno);
  FILE* f = ::fdopen(::dup(in.get()), "rb");
  if (!f) return Error::from_errno("fdopen " + archive, errno);
  CURL* c = curl_easy_init();
  if (!c) {
    std::fclose(f);
    return Error(Errc::kIo, "--load: curl_easy_init failed");
  }
  std::string body;
  char err[CURL_ERROR_SIZE] = {0};
  struct curl_slist* hdrs = curl_slist_append(nullptr, "Content-Type: application/x-tar");
  // quiet=0: the daemon streams what it loaded, one JSON message per line.
  const std::string url = (t.unix_socket.empty() ? t.url : std::string("http://docker")) + "/images/load?quiet=0";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!t.unix_socket.empty()) curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, t.unix_socket.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_READDATA, f);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(st.st_size));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  std::fclose(f);
  if (rc != CURLE_OK)
    return Error(Errc::kIo, "--load: the docker daemon at " + t.where + ": " + (err[0] ? err : curl_easy_strerror(rc)));
  if (code != 200) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    std::string msg = j.is_object() && j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>() : body;
    return Error(Errc::kIo, "--load: the docker daemon at " + t.where + " refused the image (HTTP " + std::to_string(code) + "): " + msg);
  }
  // A 200 can still carry an error message in the stream.
  for (size_t b = 0; b < body.size();) {
    size_t e = body.find('\n', b);
    if (e == std::string::npos) e = body.size();
    auto j = nlohmann::json::parse(body.substr(b, e - b), nullptr, false);
    if (j.is_object() && j.contains("error"))
      return Error(Errc::kIo, "--load: the docker daemon at " + t.where + ": " + j["error"].dump());
    b = e + 1;
  }
  return {};
}

Status podman_load(const LoadTarget& t, const std::string& archive) {
  std::string out;
  auto rc = run_captured({t.podman, "load", "-q", "-i", archive}, &out);
  if (!rc.ok()) return Error(Errc::kIo, "--load: cannot run " + t.podman + ": " + rc.error().message());
  if (*rc != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return Error(Errc::kIo, "--load: podman load failed: " + out);
  }
  return {};
}

}  // namespace

Result<LoadTarget> load_target() {
  LoadTarget t;
  if (const char* h = std::getenv("DOCKER_HOST"); h && *h) {
    std::string host = h;
    t.where = host;
    if (host.rfind("unix://", 0) == 0) {
      t.unix_socket = host.substr(7);
      if (!is_socket(t.unix_socket)) return Error(Errc::kNotFound, "--load: DOCKER_HOST=" + host + ": no socket there");
      return t;
    }
    if (host.rfind("tcp://", 0) == 0) {
      if (const char* v = std::getenv("DOCKER_TLS_VERIFY"); v && *v && std::string(v) != "0")
        return Error(Errc::kUnsupported, "--load: DOCKER_HOST=" + host + " with DOCKER_TLS_VERIFY: TLS to the daemon is not supported; use a unix socket, or -o type=docker,dest=FILE and docker load");
      t.url = "http://" + host.substr(6);
      return t;
    }
    return Error(Errc::kUnsupported, "--load: DOCKER_HOST=" + host + ": only unix:// and tcp:// are supported");
  }
  if (is_socket(kDefaultSocket)) {
    t.unix_socket = kDefaultSocket;
    t.where = std::string("unix://") + kDefaultSocket;
    return t;
  }
  t.podman = fs::find_executable("podman");
  if (!t.podman.empty()) {
    t.where = "podman";
    return t;
  }
  return Error(Errc::kNotFound,
               std::string("--load: no docker daemon (DOCKER_HOST is not set and there is no ") + kDefaultSocket +
                   ") and no podman on PATH to load the image into; write it with -o type=docker,dest=FILE instead");
}

Status load_archive(const LoadTarget& t, const std::string& archive) {
  return t.podman.empty() ? docker_load(t, archive) : podman_load(t, archive);
}

}  // namespace ocib::exporter
