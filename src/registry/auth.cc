#include "registry/auth.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/fs.h"

extern char** environ;

namespace ocib::registry {

namespace {

using nlohmann::json;

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "127.0.0.1:5000" stays.
std::string host_of_key(std::string_view key) {
  if (auto p = key.find("://"); p != std::string_view::npos) key = key.substr(p + 3);
  if (auto p = key.find('/'); p != std::string_view::npos) key = key.substr(0, p);
  return lower(key);
}

bool host_matches(const std::string& registry, const std::string& key) {
  std::string h = host_of_key(key);
  if (registry == "docker.io") {
    return h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io";
  }
  return h == registry;
}

std::string helper_server(const std::string& registry) {
  return registry == "docker.io" ? "https://index.docker.io/v1/" : registry;
}

Result<std::optional<Credential>> from_file(const std::string& path, const std::string& registry,
                                            bool* found_file) {
  if (!fs::exists(path)) return std::optional<Credential>();
  *found_file = true;
  OCIB_ASSIGN_OR_RETURN(std::string text, fs::read_file(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(Errc::kCorrupt, path + ": not valid JSON");
  }
  if (auto h = j.find("credHelpers"); h != j.end() && h->is_object()) {
    for (auto it = h->begin(); it != h->end(); ++it) {
      if (it.value().is_string() && host_matches(registry, it.key())) {
        return run_credential_helper(it.value().get<std::string>(), helper_server(registry));
      }
    }
  }
  if (auto a = j.find("auths"); a != j.end() && a->is_object()) {
    for (auto it = a->begin(); it != a->end(); ++it) {
      if (!it.value().is_object() || !host_matches(registry, it.key())) continue;
      const json& e = it.value();
      Credential c;
      if (auto au = e.find("auth"); au != e.end() && au->is_string() && !au->empty()) {
        auto dec = base64_decode(au->get<std::string>());
        if (!dec.ok()) return Error(Errc::kCorrupt, path + ": bad base64 in auths." + it.key());
        size_t colon = dec->find(':');
        if (colon == std::string::npos) {
          return Error(Errc::kCorrupt, path + ": auths." + it.key() + " is not user:password");
        }
        c.username = dec->substr(0, colon);
        c.password = dec->substr(colon + 1);
        return std::optional<Credential>(c);
      }
      auto u = e.find("username");
      auto p = e.find("password");
      if (u != e.end() && p != e.end() && u->is_string() && p->is_string()) {
        c.username = u->get<std::string>();
        c.password = p->get<std::string>();
        return std::optional<Credential>(c);
      }
      if (auto t = e.find("identitytoken"); t != e.end() && t->is_string()) {
        c.username = "<token>";
        c.password = t->get<std::string>();
        return std::optional<Credential>(c);
      }
    }
  }
  if (auto s = j.find("credsStore"); s != j.end() && s->is_string() && !s->empty()) {
    return run_credential_helper(s->get<std::string>(), helper_server(registry));
  }
  return std::optional<Credential>();
}

}  // namespace

Challenge parse_challenge(std::string_view h) {
  Challenge c;
  size_t i = 0;
  while (i < h.size() && std::isspace(static_cast<unsigned char>(h[i]))) ++i;
  size_t s = i;
  while (i < h.size() && !std::isspace(static_cast<unsigned char>(h[i]))) ++i;
  c.scheme = lower(h.substr(s, i - s));
  while (i < h.size()) {
    while (i < h.size() && (std::isspace(static_cast<unsigned char>(h[i])) || h[i] == ',')) ++i;
    size_t ks = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',') ++i;
    std::string key = lower(h.substr(ks, i - ks));
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    if (i >= h.size() || h[i] != '=') continue;
    ++i;
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
    std::string val;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        val += h[i++];
      }
      if (i < h.size()) ++i;  // closing quote
    } else {
      while (i < h.size() && h[i] != ',') val += h[i++];
      while (!val.empty() && std::isspace(static_cast<unsigned char>(val.back()))) val.pop_back();
    }
    if (!key.empty()) c.params[key] = val;
  }
  return c;
}

std::string base64_encode(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    int v = val(c);
    if (v < 0) return Error(Errc::kCorrupt, "invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::vector<std::string> CredentialSources::default_files() {
  std::vector<std::string> files;
  if (const char* f = std::getenv("REGISTRY_AUTH_FILE"); f && *f) files.push_back(f);
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) {
    files.push_back(fs::join(x, "containers/auth.json"));
  }
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) {
    files.push_back(fs::join(d, "config.json"));
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    files.push_back(fs::join(home, ".docker/config.json"));
  }
  return files;
}

Result<std::optional<Credential>> lookup_credentials(const std::string& registry,
                                                     const CredentialSources& src) {
  std::vector<std::string> files =
      src.auth_file.empty() ? CredentialSources::default_files() : std::vector{src.auth_file};
  for (const auto& f : files) {
    bool found = false;
    auto r = from_file(f, registry, &found);
    if (!r.ok()) return std::move(r).error().wrap("reading credentials for " + registry);
    if (r->has_value()) return r;
  }
  return std::optional<Credential>();
}

Result<std::optional<Credential>> run_credential_helper(const std::string& helper,
                                                        const std::string& server) {
  for (char c : helper) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return Error::invalid("invalid credential helper name \"" + helper + "\"");
    }
  }
  const std::string prog = "docker-credential-" + helper;
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(out, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
  UniqueFd out_r(out[0]), out_w(out[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  char* argv[] = {const_cast<char*>(prog.c_str()), const_cast<char*>("get"), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, prog.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Error::from_errno("running credential helper " + prog, rc);
  in_r.reset();
  out_w.reset();
  std::string input = server + "\n";
  (void)!::write(in_w.get(), input.data(), input.size());
  in_w.reset();
  std::string output;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(out_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (output.size() < (1 << 20)) output.append(buf, static_cast<size_t>(n));
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    // The helper protocol reports a missing entry as a failure with this text.
    if (output.find("credentials not found") != std::string::npos) {
      return std::optional<Credential>();
    }
    return Error(Errc::kGeneric, prog + " get failed for " + server);
  }
  json j = json::parse(output, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Error(Errc::kCorrupt, prog + " get: output is not JSON");
  }
  Credential c;
  if (auto u = j.find("Username"); u != j.end() && u->is_string()) c.username = *u;
  if (auto s = j.find("Secret"); s != j.end() && s->is_string()) c.password = *s;
  if (c.username.empty() && c.password.empty()) return std::optional<Credential>();
  return std::optional<Credential>(c);
}

}  // namespace ocib::registry
