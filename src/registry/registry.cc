#include "registry/registry.h"
#include "oci/platform.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "base/fd.h"
#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "registry/auth.h"
#include "registry/http.h"

namespace ocib::registry {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* kAcceptManifests =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

bool is_index_type(std::string_view t) {
  return t == oci::kMediaTypeIndex || t == kMediaTypeDockerManifestList;
}
bool is_manifest_type(std::string_view t) {
  return t == oci::kMediaTypeManifest || t == kMediaTypeDockerManifest;
}

// "application/json; charset=utf-8" -> "application/json"
std::string bare_media_type(std::string t) {
  if (auto p = t.find(';'); p != std::string::npos) t.resize(p);
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// The message of a distribution-spec error body, else the status line.
std::string registry_error(const HttpResponse& r) {
  std::string msg = "HTTP " + std::to_string(r.status);
  json j = json::parse(r.body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto e = j.find("errors");
    if (e != j.end() && e->is_array() && !e->empty() && (*e)[0].is_object()) {
      const json& first = (*e)[0];
      if (auto c = first.find("code"); c != first.end() && c->is_string()) {
        msg += " " + c->get<std::string>();
      }
      if (auto m = first.find("message"); m != first.end() && m->is_string()) {
        msg += ": " + m->get<std::string>();
      }
    }
  }
  return msg;
}

std::string home_dir() {
  const char* h = std::getenv("HOME");
  return h ? h : "";
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') out.push_back(e->d_name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// "https://h:5000/v2/x?y" -> "h:5000"
std::string url_host(std::string_view url) {
  auto p = url.find("://");
  if (p == std::string_view::npos) return {};
  url = url.substr(p + 3);
  return std::string(url.substr(0, url.find_first_of("/?#")));
}

// "https://h/v2/x/blobs/uploads/u?_state=..." -> "https://h/v2/x/blobs/uploads/u": for errors,
// without upload state or signed-URL parameters.
std::string url_for_errors(std::string_view url) {
  return std::string(url.substr(0, url.find_first_of("?#")));
}

bool ends_with(std::string_view s, std::string_view suf) {
  return s.size() >= suf.size() && s.substr(s.size() - suf.size()) == suf;
}

// Runs fn(i) for i in [0, n) on up to `max` threads; the first error cancels the rest.
Status run_bounded(size_t n, int max, const std::function<Status(size_t, std::atomic<bool>&)>& fn) {
  std::atomic<size_t> next{0};
  std::atomic<bool> cancel{false};
  std::mutex mu;
  std::optional<Error> first;
  auto worker = [&] {
    while (!cancel) {
      size_t i = next++;
      if (i >= n) return;
      Status st = fn(i, cancel);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lk(mu);
        if (!first) first = std::move(st).error();
        cancel = true;
      }
    }
  };
  size_t threads = std::min<size_t>(n, static_cast<size_t>(std::max(1, max)));
  std::vector<std::thread> pool;
  for (size_t i = 1; i < threads; ++i) pool.emplace_back(worker);
  if (threads > 0) worker();
  for (auto& t : pool) t.join();
  if (first) return *first;
  return {};
}

struct Endpoint {
  std::string scheme = "https";
  std::string api_host;  // docker.io -> registry-1.docker.io
  TlsConfig tls;
  bool insecure = false;
  bool probed = false;  // insecure https-vs-http decided
};

struct Token {
  std::string header;
  Clock::time_point expires;
};

}  // namespace

struct Client::Impl {
  Options opts;
  Http http;
  std::mutex mu;
  std::map<std::string, Endpoint> endpoints;
  std::map<std::string, std::optional<Credential>> creds;
  std::map<std::string, Token> tokens;             // "host scope scope" -> bearer
  std::map<std::string, std::string> basic_hosts;  // host -> "Basic ..." once the registry asked
  std::atomic<int> uploaded{0}, skipped{0}, mounted{0}, downloaded{0};

  explicit Impl(Options o) : opts(std::move(o)), http(opts.user_agent) {
    for (auto [name, field] : {std::pair{"OCIB_LOW_SPEED_LIMIT", &opts.low_speed_limit},
                               std::pair{"OCIB_LOW_SPEED_TIME", &opts.low_speed_time}}) {
      const char* v = std::getenv(name);
      if (!v || !*v) continue;
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*end != '\0' || n < 0) {
        log::warn(std::string("ignoring ") + name + "=" + v + ": not a non-negative integer");
        continue;
      }
      *field = n;
    }
  }

  // Every request gets the client's low-speed limit.
  void limit_speed(HttpRequest& req) const {
    req.low_speed_limit = opts.low_speed_limit;
    req.low_speed_time = opts.low_speed_time;
  }

  bool is_insecure(const std::string& host) const {
    for (const auto& h : opts.insecure_hosts) {
      if (h == host) return true;
    }
    return false;
  }

  std::vector<std::string> certs_roots() const {
    if (!opts.certs_dirs.empty()) return opts.certs_dirs;
    std::vector<std::string> r;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) {
      r.push_back(fs::join(x, "containers/certs.d"));
    } else if (!home_dir().empty()) {
      r.push_back(fs::join(home_dir(), ".config/containers/certs.d"));
    }
    r.push_back("/etc/containers/certs.d");
    r.push_back("/etc/docker/certs.d");
    return r;
  }

  std::string certs_hint(const std::string& host) const {
    std::vector<std::string> roots = certs_roots();
    std::string s;
    for (size_t i = 0; i < roots.size() && i < 2; ++i) {
      if (i) s += " or ";
      s += fs::join(roots[i], host) + "/ca.crt";
    }
    return s;
  }

  Endpoint& endpoint(const std::string& host) {  // mu held
    auto it = endpoints.find(host);
    if (it != endpoints.end()) return it->second;
    Endpoint ep;
    ep.api_host = host == kDockerHub ? "registry-1.docker.io" : host;
    ep.insecure = is_insecure(host);
    ep.tls.verify = !ep.insecure;
    std::string extra_ca;
    for (const auto& root : certs_roots()) {
      std::string dir = fs::join(root, host);
      for (const auto& f : list_dir(dir)) {
        std::string p = fs::join(dir, f);
        if (ends_with(f, ".crt")) {
          auto pem = fs::read_file(p);
          if (pem.ok()) extra_ca += *pem + "\n";
        } else if (ends_with(f, ".cert") && ep.tls.client_cert.empty()) {
          std::string key = p.substr(0, p.size() - 5) + ".key";
          if (fs::exists(key)) {
            ep.tls.client_cert = p;
            ep.tls.client_key = key;
          }
        }
      }
    }
    if (!extra_ca.empty()) {
      // CAINFO replaces the default bundle; keep the system CAs trusted too.
      for (const char* sys :
           {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}) {
        auto b = fs::read_file(sys);
        if (b.ok()) {
          extra_ca += *b;
          break;
        }
      }
      ep.tls.ca_pem = std::move(extra_ca);
    }
    return endpoints.emplace(host, std::move(ep)).first->second;
  }

  Result<std::optional<Credential>> credentials(const std::string& host) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (auto it = creds.find(host); it != creds.end()) return it->second;
    }
    CredentialSources src;
    src.auth_file = opts.auth_file;
    OCIB_ASSIGN_OR_RETURN(auto c, lookup_credentials(host, src));
    std::lock_guard<std::mutex> lk(mu);
    creds[host] = c;
    return c;
  }

  static std::string scope_key(const std::string& host, const std::vector<std::string>& scopes) {
    std::string k = host;
    for (const auto& s : scopes) k += " " + s;
    return k;
  }

  // `who` names the server in messages: "registry HOST" unless given.
  Error transport_error(const std::string& host, const HttpResponse& r, const HttpRequest& req) {
    const std::string who = "registry " + host;
    const std::string where = req.method + " " + url_for_errors(req.url);
    if (r.too_slow) {
      return Error(Errc::kIo, who + ": " + where + ": too slow: under " +
                                  std::to_string(req.low_speed_limit) + " bytes/s for " +
                                  std::to_string(req.low_speed_time) +
                                  " s (the low-speed limit; OCIB_LOW_SPEED_LIMIT and "
                                  "OCIB_LOW_SPEED_TIME set it)");
    }
    if (r.too_large) {
      return Error(Errc::kGeneric,
                   who + ": " + where + ": the answer exceeds " +
                       (req.max_body_what.empty()
                            ? "the " + std::to_string(req.max_body) + "-byte response limit"
                            : req.max_body_what));
    }
    if (tls_verify_error(r.curl_code)) {
      return Error(Errc::kSecurity, "TLS: cannot verify the certificate of registry " + host +
                                        " (" + r.curl_error + "); to trust its CA, put it at " +
                                        certs_hint(host) + ", or list " + host +
                                        " as an insecure registry");
    }
    if (tls_handshake_error(r.curl_code) && !is_insecure(host)) {
      return Error(Errc::kIo, who + ": TLS handshake failed (" + r.curl_error +
                                  "); if it serves plain HTTP, list " + host +
                                  " as an insecure registry");
    }
    return Error(Errc::kIo, who + ": " + where + ": " + r.curl_error);
  }

  // Obtains a bearer token for scopes per the challenge; caches it by scope until it expires.
  Status fetch_token(const std::string& host, const Challenge& ch,
                     const std::vector<std::string>& scopes, const std::string& key) {
    auto realm = ch.params.find("realm");
    if (realm == ch.params.end() || realm->second.empty()) {
      return Error(Errc::kGeneric, "registry " + host + ": bearer challenge without a realm");
    }
    std::string url = realm->second;
    std::string q;
    if (auto s = ch.params.find("service"); s != ch.params.end()) {
      q += "service=" + Http::escape(s->second);
    }
    std::vector<std::string> sc = scopes;
    if (auto s = ch.params.find("scope"); s != ch.params.end() && !s->second.empty()) {
      if (std::find(sc.begin(), sc.end(), s->second) == sc.end()) sc.push_back(s->second);
    }
    for (const auto& s : sc) q += std::string(q.empty() ? "" : "&") + "scope=" + Http::escape(s);
    if (!q.empty()) url += (url.find('?') == std::string::npos ? "?" : "&") + q;

    std::string realm_scheme = url.substr(0, url.find("://"));
    std::string realm_host = url_host(url);
    if (realm_host.empty()) {
      return Error(Errc::kGeneric,
                   "registry " + host + ": bad token realm \"" + realm->second + "\"");
    }
    OCIB_ASSIGN_OR_RETURN(auto cred, credentials(host));
    HttpRequest req;
    req.url = url;
    req.follow_redirects = true;
    if (cred) {
      if (realm_scheme != "https" && !is_insecure(realm_host)) {
        return Error(Errc::kSecurity, "registry " + host +
                                          ": refusing to send credentials to "
                                          "a plain-HTTP token realm (" +
                                          realm_host + ")");
      }
      req.headers.push_back("Authorization: Basic " +
                            base64_encode(cred->username + ":" + cred->password));
    }
    TlsConfig tls;
    {
      std::lock_guard<std::mutex> lk(mu);
      tls = endpoint(realm_host).tls;
    }
    limit_speed(req);
    HttpResponse r = http.perform(req, tls);
    if (r.curl_code) return transport_error(realm_host, r, req);
    if (r.status == 401 || r.status == 403) {
      return Error(Errc::kSecurity,
                   "registry " + host + ": authentication failed" +
                       (cred ? " for user \"" + cred->username + "\"" : " (no credentials found)") +
                       ": the token service answered HTTP " + std::to_string(r.status));
    }
    if (r.status != 200) {
      return Error(Errc::kGeneric, "registry " + host + ": token service: " + registry_error(r));
    }
    json j = json::parse(r.body, nullptr, false);
    std::string tok;
    if (!j.is_discarded() && j.is_object()) {
      for (const char* k : {"token", "access_token"}) {
        if (auto t = j.find(k); t != j.end() && t->is_string() && !t->empty()) {
          tok = t->get<std::string>();
          break;
        }
      }
    }
    if (tok.empty())
      return Error(Errc::kCorrupt, "registry " + host + ": token response has no token");
    int64_t ttl = 60;
    if (auto e = j.find("expires_in"); e != j.end() && e->is_number_integer()) {
      ttl = std::max<int64_t>(e->get<int64_t>(), 10);
    }
    std::lock_guard<std::mutex> lk(mu);
    tokens[key] =
        Token{"Authorization: Bearer " + tok, Clock::now() + std::chrono::seconds(ttl - 5)};
    return {};
  }

  // Sends req (url may be a path "/v2/..." or absolute) to the registry host, handling scheme,
  // TLS settings and authentication. HTTP statuses other than an unanswerable 401 are returned.
  Result<HttpResponse> call(const std::string& host, const std::vector<std::string>& scopes,
                            HttpRequest req) {
    const std::string path = req.url;
    const std::string key = scope_key(host, scopes);
    const std::vector<std::string> base_headers = req.headers;
    bool auth_retried = false;
    bool scheme_retried = false;
    limit_speed(req);
    while (true) {
      TlsConfig tls;
      std::string auth, api_host;
      {
        std::lock_guard<std::mutex> lk(mu);
        Endpoint& ep = endpoint(host);
        tls = ep.tls;
        if (path.rfind("/", 0) == 0) req.url = ep.scheme + "://" + ep.api_host + path;
        api_host = ep.api_host;
        if (auto t = tokens.find(key); t != tokens.end() && t->second.expires > Clock::now()) {
          auth = t->second.header;
        } else if (auto b = basic_hosts.find(host); b != basic_hosts.end()) {
          auth = b->second;
        }
      }
      req.headers = base_headers;
      // Credentials go to the registry's own host only, never to an upload/redirect elsewhere.
      if (!auth.empty() && url_host(req.url) == api_host) req.headers.push_back(auth);
      HttpResponse r = http.perform(req, tls);
      if (r.curl_code) {
        bool https = req.url.rfind("https://", 0) == 0;
        if (tls_handshake_error(r.curl_code) && https && !scheme_retried && is_insecure(host)) {
          // An insecure registry that speaks plain HTTP: fall back once and remember.
          std::lock_guard<std::mutex> lk(mu);
          Endpoint& ep = endpoint(host);
          if (!ep.probed) ep.scheme = "http";
          ep.probed = true;
          scheme_retried = true;
          continue;
        }
        return transport_error(host, r, req);
      }
      {
        std::lock_guard<std::mutex> lk(mu);
        endpoint(host).probed = true;
      }
      if (r.status != 401) return r;
      OCIB_ASSIGN_OR_RETURN(auto cred, credentials(host));
      if (auth_retried) {
        return Error(Errc::kSecurity,
                     "registry " + host + ": authentication failed" +
                         (cred ? ": credentials for user \"" + cred->username + "\" were rejected"
                               : ": no credentials found (log in, or set REGISTRY_AUTH_FILE)"));
      }
      auth_retried = true;
      Challenge ch;
      for (const auto& h : r.all("www-authenticate")) {
        Challenge c = parse_challenge(h);
        if (c.scheme == "bearer") {
          ch = c;
          break;
        }
        if (c.scheme == "basic" && ch.scheme.empty()) ch = c;
      }
      if (ch.scheme == "bearer") {
        OCIB_TRY(fetch_token(host, ch, scopes, key));
      } else if (ch.scheme == "basic") {
        if (!cred) {
          return Error(Errc::kSecurity, "registry " + host +
                                            ": authentication required and no credentials found "
                                            "(log in, or set REGISTRY_AUTH_FILE)");
        }
        std::lock_guard<std::mutex> lk(mu);
        basic_hosts[host] =
            "Authorization: Basic " + base64_encode(cred->username + ":" + cred->password);
      } else {
        return Error(Errc::kSecurity,
                     "registry " + host + ": HTTP 401 without a usable WWW-Authenticate challenge");
      }
    }
  }

  // call() for a request that can be sent again as it is (no streamed response body: manifests,
  // HEADs, upload starts): a transport failure, 429 or 5xx is retried with the backoff blob
  // downloads use, up to opts.max_attempts tries. The last answer (or error) is returned.
  Result<HttpResponse> call_retrying(const std::string& host,
                                     const std::vector<std::string>& scopes,
                                     const HttpRequest& req, const std::string& what) {
    for (int attempt = 1;; ++attempt) {
      Result<HttpResponse> r = call(host, scopes, req);
      std::string why;
      if (!r.ok()) {
        if (r.error().code() != Errc::kIo) return r;
        why = r.error().message();
      } else if (r->status == 429 || r->status >= 500) {
        why = registry_error(*r);
      } else {
        return r;
      }
      if (attempt >= opts.max_attempts) {
        if (r.ok()) return r;  // the caller words the failed status
        return std::move(r).error().wrap(what + ": gave up after " + std::to_string(attempt) +
                                         " attempts");
      }
      log::debug(what + ": " + why + "; retrying");
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(opts.backoff_ms)
                                                            << std::min(attempt - 1, 6)));
    }
  }

  // Absolute URL for a Location header that may be relative.
  std::string absolute(const std::string& host, const std::string& loc) {
    if (loc.find("://") != std::string::npos) return loc;
    std::lock_guard<std::mutex> lk(mu);
    Endpoint& ep = endpoint(host);
    return ep.scheme + "://" + ep.api_host + (loc.rfind("/", 0) == 0 ? "" : "/") + loc;
  }

  struct Manifest {
    std::string bytes, digest, media_type;
    json doc;          // bytes, parsed (an object)
    std::string what;  // "manifest HOST/REPO:TAG", for errors
  };

  Result<Manifest> fetch_manifest(const std::string& host, const std::string& repo,
                                  const std::string& ref, const std::vector<std::string>& scopes) {
    HttpRequest req;
    req.url = "/v2/" + repo + "/manifests/" + ref;
    req.headers.push_back(kAcceptManifests);
    req.follow_redirects = true;
    req.max_body = kMaxManifestBytes;
    req.max_body_what = "the " + std::to_string(kMaxManifestBytes >> 20) +
                        " MiB limit for manifests and indexes";
    const std::string what = host + "/" + repo + (valid_digest(ref) ? "@" : ":") + ref;
    OCIB_ASSIGN_OR_RETURN(HttpResponse r, call_retrying(host, scopes, req, "manifest " + what));
    if (r.status == 404) return Error(Errc::kNotFound, "manifest " + what + " not found");
    if (r.status != 200) {
      return Error(Errc::kGeneric, "fetching manifest " + what + ": " + registry_error(r));
    }
    Manifest m;
    m.bytes = std::move(r.body);
    m.digest = oci::digest_of(m.bytes);
    if (valid_digest(ref) && ref != m.digest) {
      return Error(Errc::kCorrupt, "manifest " + what + ": digest mismatch (got " + m.digest + ")");
    }
    std::string hdr = r.header("docker-content-digest");
    if (hdr.rfind("sha256:", 0) == 0 && hdr != m.digest) {
      return Error(Errc::kCorrupt, "manifest " + what + ": digest mismatch (registry says " + hdr +
                                       ", content is " + m.digest + ")");
    }
    m.media_type = bare_media_type(r.header("content-type"));
    OCIB_ASSIGN_OR_RETURN(m.doc, oci::parse_json(m.bytes, "manifest " + what));
    if (!m.doc.is_object()) {
      return Error(Errc::kCorrupt, "manifest " + what + ": not a JSON object");
    }
    if (auto mt = m.doc.find("mediaType"); mt != m.doc.end() && mt->is_string()) {
      m.media_type = mt->get<std::string>();
    } else if (!is_index_type(m.media_type) && !is_manifest_type(m.media_type)) {
      m.media_type = oci::is_index_json(m.doc) ? oci::kMediaTypeIndex : oci::kMediaTypeManifest;
    }
    m.what = "manifest " + what;
    return m;
  }

  // Streams a blob into tmp, verifying size and digest; resumes dropped transfers with Range.
  Status download_blob(const std::string& host, const std::string& repo,
                       const std::vector<std::string>& scopes, const oci::Descriptor& d,
                       const std::string& tmp, std::atomic<bool>& cancel, const BlobSink* stream = nullptr) {
    if (!valid_digest(d.digest)) {
      return Error(Errc::kUnsupported, "blob " + d.digest + ": unsupported digest");
    }
    OCIB_ASSIGN_OR_RETURN(UniqueFd fd, fs::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    auto hasher = std::make_unique<Sha256>();
    int64_t got = 0;
    std::string write_err;
    const std::string progress_what = "pulling " + d.digest.substr(0, 19);  // once, not per chunk
    for (int attempt = 1;; ++attempt) {
      HttpRequest req;
      req.url = "/v2/" + repo + "/blobs/" + d.digest;
      req.follow_redirects = true;
      const int64_t resume_at = got;
      if (resume_at > 0) req.headers.push_back("Range: bytes=" + std::to_string(resume_at) + "-");
      req.on_start = [&](long status) {
        if (status == 200 && got > 0) {  // the server ignored Range: start over
          if (::ftruncate(fd.get(), 0) != 0 || ::lseek(fd.get(), 0, SEEK_SET) != 0) return false;
          hasher = std::make_unique<Sha256>();
          got = 0;
          if (stream && stream->restart) stream->restart();
        }
        return true;
      };
      req.on_data = [&](std::string_view data) {
        if (cancel) return false;
        got += static_cast<int64_t>(data.size());
        if (opts.progress) opts.progress(progress_what, uint64_t(got), uint64_t(std::max<int64_t>(d.size, 0)));
        // Bounded by the descriptor, a size of 0 included: more bytes than it says can only
        // be wrong, and a hostile registry would otherwise stream without end.
        if (got > d.size) {
          write_err = "more data than the descriptor's size " + std::to_string(d.size);
          return false;
        }
        hasher->update(data);
        if (stream && stream->tee) stream->tee(data);
        const char* p = data.data();
        size_t left = data.size();
        while (left > 0) {
          ssize_t n = ::write(fd.get(), p, left);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            write_err = std::string("write ") + tmp + ": " + std::strerror(errno);
            return false;
          }
          p += n;
          left -= static_cast<size_t>(n);
        }
        return true;
      };
      auto rr = call(host, scopes, std::move(req));
      if (cancel) return Error(Errc::kCancelled, "cancelled");
      if (!write_err.empty()) {
        return Error(Errc::kCorrupt, "blob " + d.digest + ": " + write_err);
      }
      bool retry = false;
      std::string why;
      if (!rr.ok()) {
        if (rr.error().code() != Errc::kIo) return std::move(rr).error();
        retry = true;  // transport failure: resume
        why = rr.error().message();
      } else if (rr->status == 200 || rr->status == 206) {
        break;
      } else if (rr->status == 416 && got == d.size) {
        break;
      } else if (rr->status == 429 || rr->status >= 500) {
        retry = true;
        why = registry_error(*rr);
      } else if (rr->status == 404) {
        return Error(Errc::kNotFound, "blob " + d.digest + " not found in " + host + "/" + repo);
      } else {
        return Error(Errc::kGeneric, "fetching blob " + d.digest + ": " + registry_error(*rr));
      }
      if (retry && attempt >= opts.max_attempts) {
        return Error(Errc::kIo, "fetching blob " + d.digest + ": gave up after " +
                                    std::to_string(attempt) + " attempts: " + why);
      }
      log::debug("blob " + d.digest + ": " + why + "; retrying from byte " + std::to_string(got));
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(opts.backoff_ms)
                                                            << std::min(attempt - 1, 6)));
    }
    if (::fsync(fd.get()) != 0) return Error::from_errno("fsync " + tmp, errno);
    if (d.size >= 0 && got != d.size) {
      return Error(Errc::kCorrupt, "blob " + d.digest + ": size mismatch (got " +
                                       std::to_string(got) + ", want " + std::to_string(d.size) +
                                       ")");
    }
    std::string actual = "sha256:" + hasher->hex_final();
    if (actual != d.digest) {
      return Error(Errc::kCorrupt, "blob " + d.digest + " from " + host + "/" + repo +
                                       ": digest mismatch (content is " + actual + ")");
    }
    downloaded++;
    return {};
  }

  // with_layers false: the manifest and config only (Client::pull_manifest).
  Result<PulledImage> pull_from(const std::string& host, const Reference& ref,
                                const oci::Platform& platform, const BlobSink& sink,
                                bool with_layers = true) {
    const std::vector<std::string> scopes = {"repository:" + ref.repository + ":pull"};
    OCIB_ASSIGN_OR_RETURN(Manifest m,
                          fetch_manifest(host, ref.repository, ref.ref_or_tag(), scopes));
    if (is_index_type(m.media_type)) {
      OCIB_ASSIGN_OR_RETURN(oci::ImageIndex index, oci::index_from_json(m.doc, m.what));
      auto sel = select_platform(index.manifests, platform);
      if (!sel.ok()) return std::move(sel).error().wrap(ref.str());
      OCIB_ASSIGN_OR_RETURN(m, fetch_manifest(host, ref.repository, sel->digest, scopes));
    }
    if (!is_manifest_type(m.media_type)) {
      return Error(Errc::kUnsupported, ref.str() + ": unsupported manifest type \"" + m.media_type +
                                           "\" (schema 1 is not supported)");
    }
    // (An index listing another index ends here, as an unsupported type: one level is followed.)
    OCIB_ASSIGN_OR_RETURN(oci::ImageManifest parsed, oci::manifest_from_json(m.doc, m.what));
    PulledImage out;
    out.manifest_digest = m.digest;
    out.manifest_bytes = m.bytes;
    const oci::Descriptor& config = parsed.config;
    if (config.size > kMaxConfigBytes) {
      return Error(Errc::kUnsupported,
                   ref.str() + ": config " + config.digest + " is " + std::to_string(config.size) +
                       " bytes, over the " + std::to_string(kMaxConfigBytes >> 20) +
                       " MiB limit for image configs");
    }
    out.config_digest = config.digest;
    out.layers = std::move(parsed.layers);
    // Config first (its bytes are returned), then the layers the store lacks, each digest once.
    std::vector<oci::Descriptor> todo = {config};
    std::set<std::string> seen = {config.digest};
    for (const auto& d : out.layers) {
      if (!with_layers) break;
      if (seen.insert(d.digest).second && !(sink.has && sink.has(d.digest))) todo.push_back(d);
    }
    std::vector<std::string> tmps(todo.size());
    for (auto& t : tmps) {
      auto p = sink.temp_path();
      if (!p.ok()) {
        for (const auto& x : tmps) {
          if (!x.empty()) ::unlink(x.c_str());
        }
        return std::move(p).error();
      }
      t = *p;
    }
    auto cleanup = [&] {
      for (const auto& x : tmps) ::unlink(x.c_str());
    };
    Status st = run_bounded(
        todo.size(), opts.max_concurrency, [&](size_t i, std::atomic<bool>& cancel) -> Status {
          return download_blob(host, ref.repository, scopes, todo[i], tmps[i], cancel);
        });
    if (!st.ok()) {
      cleanup();
      return std::move(st).error().wrap("pulling " + ref.str());
    }
    auto cb = fs::read_file(tmps[0]);
    if (!cb.ok()) {
      cleanup();
      return std::move(cb).error();
    }
    out.config_bytes = std::move(*cb);
    // Only now, with every digest verified, does anything land in the store.
    for (size_t i = 0; i < todo.size(); ++i) {
      if (i == 0 && sink.has && sink.has(todo[0].digest)) {
        ::unlink(tmps[0].c_str());
        continue;
      }
      Status c = sink.commit(tmps[i], todo[i].digest);
      if (!c.ok()) {
        for (size_t k = i; k < todo.size(); ++k) ::unlink(tmps[k].c_str());
        return std::move(c).error().wrap("storing " + todo[i].digest);
      }
    }
    return out;
  }

  // One blob: HEAD, else mount, else upload (monolithic or chunked).
  Status push_blob(const std::string& host, const std::string& repo,
                   const std::vector<std::string>& scopes, const oci::Descriptor& d,
                   const std::string& path, const std::vector<std::string>& mount_from) {
    HttpRequest head;
    head.method = "HEAD";
    head.url = "/v2/" + repo + "/blobs/" + d.digest;
    head.follow_redirects = true;
    OCIB_ASSIGN_OR_RETURN(HttpResponse hr,
                          call_retrying(host, scopes, head, "checking blob " + d.digest));
    if (hr.status == 200) {
      skipped++;
      return {};
    }
    std::string location;
    for (const auto& from : mount_from) {
      if (from == repo) continue;
      HttpRequest mreq;
      mreq.method = "POST";
      mreq.url = "/v2/" + repo + "/blobs/uploads/?mount=" + Http::escape(d.digest) +
                 "&from=" + Http::escape(from);
      OCIB_ASSIGN_OR_RETURN(HttpResponse mr, call(host, scopes, std::move(mreq)));
      if (mr.status == 201) {
        mounted++;
        return {};
      }
      if (mr.status == 202 && !mr.header("location").empty()) {
        location = absolute(host, mr.header("location"));
        break;
      }
    }
    if (path.empty()) {
      return Error(Errc::kNotFound, "blob " + d.digest + " not found locally, nor in " + host + "/" + repo +
                                        (mount_from.empty() ? "" : " or the repositories it could be mounted from"));
    }
    if (location.empty()) {
      HttpRequest start;
      start.method = "POST";
      start.url = "/v2/" + repo + "/blobs/uploads/";
      OCIB_ASSIGN_OR_RETURN(HttpResponse sr, call_retrying(host, scopes, start,
                                                           "starting upload of " + d.digest));
      if (sr.status != 202 || sr.header("location").empty()) {
        return Error(Errc::kGeneric, "starting upload of " + d.digest + " to " + host + "/" + repo +
                                         ": " + registry_error(sr));
      }
      location = absolute(host, sr.header("location"));
    }
    struct stat stt {};
    if (::stat(path.c_str(), &stt) != 0) return Error::from_errno("stat " + path, errno);
    const int64_t size = stt.st_size;
    if (size != d.size) {
      return Error(Errc::kCorrupt, "blob " + d.digest + " at " + path + " has size " +
                                       std::to_string(size) + ", descriptor says " +
                                       std::to_string(d.size));
    }
    auto with_digest = [&](const std::string& loc) {
      return loc + (loc.find('?') == std::string::npos ? "?" : "&") +
             "digest=" + Http::escape(d.digest);
    };
    const std::string progress_what = "pushing " + d.digest.substr(0, 19);  // once, not per chunk
    HttpRequest put;
    put.method = "PUT";
    if (size <= opts.chunk_size) {
      put.url = with_digest(location);
      put.body_file = path;
      put.body_length = size;
      if (opts.progress)
        put.on_sent = [this, &d, &progress_what](int64_t sent) { opts.progress(progress_what, uint64_t(sent), uint64_t(d.size)); };
    } else {
      for (int64_t off = 0; off < size; off += opts.chunk_size) {
        int64_t len = std::min<int64_t>(opts.chunk_size, size - off);
        HttpRequest patch;
        patch.method = "PATCH";
        patch.url = location;
        patch.body_file = path;
        patch.body_offset = off;
        patch.body_length = len;
        patch.headers.push_back("Content-Range: " + std::to_string(off) + "-" +
                                std::to_string(off + len - 1));
        if (opts.progress)
          patch.on_sent = [this, &d, &progress_what, off](int64_t sent) {
            opts.progress(progress_what, uint64_t(off + sent), uint64_t(d.size));
          };
        OCIB_ASSIGN_OR_RETURN(HttpResponse pr, call(host, scopes, std::move(patch)));
        if (pr.status != 202) {
          return Error(Errc::kGeneric, "uploading chunk of " + d.digest + " at " +
                                           std::to_string(off) + ": " + registry_error(pr));
        }
        if (!pr.header("location").empty()) location = absolute(host, pr.header("location"));
      }
      put.url = with_digest(location);
    }
    OCIB_ASSIGN_OR_RETURN(HttpResponse fr, call(host, scopes, std::move(put)));
    if (fr.status != 201) {
      return Error(
          fr.status == 400 ? Errc::kCorrupt : Errc::kGeneric,
          "uploading " + d.digest + " to " + host + "/" + repo + ": " + registry_error(fr));
    }
    uploaded++;
    return {};
  }
};

Result<oci::Descriptor> select_platform(const std::vector<oci::Descriptor>& manifests,
                                        const oci::Platform& want) {
  std::vector<oci::Platform> candidates;
  for (const auto& d : manifests) candidates.push_back(d.platform ? *d.platform : oci::Platform{"", "", ""});
  int i = oci::best_match(candidates, want);
  const oci::Descriptor* best = i < 0 ? nullptr : &manifests[static_cast<size_t>(i)];
  if (!best) {
    std::string have;
    for (const auto& d : manifests) {
      if (!d.platform || d.platform->os == "unknown") continue;
      if (!have.empty()) have += ", ";
      have += d.platform->os + "/" + d.platform->architecture +
              (d.platform->variant.empty() ? "" : "/" + d.platform->variant);
    }
    return Error(Errc::kNotFound, "no manifest for platform " + want.os + "/" + want.architecture +
                                      (want.variant.empty() ? "" : "/" + want.variant) +
                                      " (available: " + (have.empty() ? "none" : have) + ")");
  }
  return *best;
}

Client::Client(Options o) : impl_(std::make_unique<Impl>(std::move(o))) {}
Client::~Client() = default;

Result<Client::RawManifest> Client::get_manifest(const Reference& ref) {
  const std::vector<std::string> scopes = {"repository:" + ref.repository + ":pull"};
  OCIB_ASSIGN_OR_RETURN(auto m, impl_->fetch_manifest(ref.registry, ref.repository,
                                                      ref.digest.empty() ? ref.tag : ref.digest, scopes));
  return RawManifest{std::move(m.bytes), std::move(m.media_type), std::move(m.digest)};
}

Result<Client::UrlContent> Client::fetch_url(const std::string& url) {
  const std::string host = url_host(url);
  if (host.empty() || (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0))
    return Error::invalid("unsupported URL \"" + url + "\" (http, https)");
  for (int attempt = 1;; ++attempt) {
    HttpRequest req;
    req.url = url;
    req.follow_redirects = true;
    UrlContent out;
    req.on_data = [&out](std::string_view chunk) {
      out.body.append(chunk);
      return true;
    };
    impl_->limit_speed(req);
    TlsConfig tls;
    {
      std::lock_guard<std::mutex> lk(impl_->mu);
      tls = impl_->endpoint(host).tls;
    }
    HttpResponse r = impl_->http.perform(req, tls);
    std::string why;
    if (r.curl_code) {
      // The registry wording where it helps (a CA to trust, the low-speed limit); else libcurl's.
      Error e = tls_verify_error(r.curl_code) || r.too_slow ? impl_->transport_error(host, r, req)
                                                            : Error(Errc::kIo, r.curl_error);
      if (!transient_curl_error(r.curl_code) || attempt >= impl_->opts.max_attempts) return e;
      why = e.message();
    } else if ((r.status == 429 || r.status >= 500) && attempt < impl_->opts.max_attempts) {
      why = "HTTP status " + std::to_string(r.status);
    } else if (r.status >= 400) {
      return Error(r.status == 404 ? Errc::kNotFound : Errc::kGeneric, "HTTP status " + std::to_string(r.status));
    } else {
      std::string lm = r.header("last-modified");
      if (!lm.empty()) {
        struct tm tm {};
        if (const char* end = ::strptime(lm.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm); end && *end == 0)
          out.last_modified = static_cast<int64_t>(::timegm(&tm));
      }
      return out;
    }
    log::debug("GET " + url + ": " + why + "; retrying");
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(impl_->opts.backoff_ms)
                                                          << std::min(attempt - 1, 6)));
  }
}

Client::Stats Client::stats() const {
  Stats s;
  s.uploaded = impl_->uploaded;
  s.skipped = impl_->skipped;
  s.mounted = impl_->mounted;
  s.downloaded = impl_->downloaded;
  return s;
}

Result<PulledImage> Client::pull(const Reference& ref, const oci::Platform& platform,
                                 const BlobSink& sink) {
  std::vector<std::string> hosts;
  if (auto m = impl_->opts.mirrors.find(ref.registry); m != impl_->opts.mirrors.end()) {
    hosts = m->second;
  }
  hosts.push_back(ref.registry);
  for (size_t i = 0; i < hosts.size(); ++i) {
    auto r = impl_->pull_from(hosts[i], ref, platform, sink);
    if (r.ok() || i + 1 == hosts.size()) return r;
    if (r.error().code() == Errc::kCorrupt) return r;  // never mask tampering with a fallback
    log::warn("mirror " + hosts[i] + " failed for " + ref.str() + ": " + r.error().str() +
              "; trying the next source");
  }
  return Error(Errc::kGeneric, "unreachable");
}

Result<PulledImage> Client::pull_manifest(const Reference& ref, const oci::Platform& platform,
                                          const BlobSink& sink) {
  std::vector<std::string> hosts;
  if (auto m = impl_->opts.mirrors.find(ref.registry); m != impl_->opts.mirrors.end()) hosts = m->second;
  hosts.push_back(ref.registry);
  for (size_t i = 0; i < hosts.size(); ++i) {
    auto r = impl_->pull_from(hosts[i], ref, platform, sink, false);
    if (r.ok() || i + 1 == hosts.size()) return r;
    if (r.error().code() == Errc::kCorrupt) return r;  // never mask tampering with a fallback
    log::warn("mirror " + hosts[i] + " failed for " + ref.str() + ": " + r.error().str() + "; trying the next source");
  }
  return Error(Errc::kGeneric, "unreachable");
}

Status Client::pull_blob(const Reference& ref, const oci::Descriptor& d, const BlobSink& sink) {
  if (sink.has && sink.has(d.digest)) return {};
  const std::vector<std::string> scopes = {"repository:" + ref.repository + ":pull"};
  std::vector<std::string> hosts;
  if (auto m = impl_->opts.mirrors.find(ref.registry); m != impl_->opts.mirrors.end()) hosts = m->second;
  hosts.push_back(ref.registry);
  for (size_t i = 0; i < hosts.size(); ++i) {
    OCIB_ASSIGN_OR_RETURN(std::string tmp, sink.temp_path());
    std::atomic<bool> cancel{false};
    if (i > 0 && sink.restart) sink.restart();
    Status st = impl_->download_blob(hosts[i], ref.repository, scopes, d, tmp, cancel, &sink);
    if (st.ok()) st = sink.commit(tmp, d.digest);
    if (st.ok()) return {};
    ::unlink(tmp.c_str());
    Error e = std::move(st).error().wrap("pulling " + d.digest + " from " + hosts[i] + "/" + ref.repository);
    if (i + 1 == hosts.size() || e.code() == Errc::kCorrupt) return e;
    log::warn("mirror " + hosts[i] + ": " + e.str() + "; trying the next source");
  }
  return Error(Errc::kGeneric, "unreachable");
}

Result<std::string> Client::resolve(const Reference& ref) {
  const std::vector<std::string> scopes = {"repository:" + ref.repository + ":pull"};
  HttpRequest req;
  req.method = "HEAD";
  req.url = "/v2/" + ref.repository + "/manifests/" + ref.ref_or_tag();
  req.headers.push_back(kAcceptManifests);
  req.follow_redirects = true;
  OCIB_ASSIGN_OR_RETURN(HttpResponse r,
                        impl_->call_retrying(ref.registry, scopes, req, "resolving " + ref.str()));
  if (r.status == 404) return Error(Errc::kNotFound, "manifest " + ref.str() + " not found");
  if (r.status == 200) {
    std::string d = r.header("docker-content-digest");
    if (valid_digest(d)) return d;
  } else {
    return Error(Errc::kGeneric, "resolving " + ref.str() + ": HTTP " + std::to_string(r.status));
  }
  // No digest header: fetch the bytes and hash them.
  OCIB_ASSIGN_OR_RETURN(
      auto m, impl_->fetch_manifest(ref.registry, ref.repository, ref.ref_or_tag(), scopes));
  return m.digest;
}

Result<std::string> Client::resolve_verified(const Reference& ref) {
  const std::vector<std::string> scopes = {"repository:" + ref.repository + ":pull"};
  OCIB_ASSIGN_OR_RETURN(
      auto m, impl_->fetch_manifest(ref.registry, ref.repository, ref.ref_or_tag(), scopes));
  return m.digest;
}

Result<std::string> Client::push(const Reference& ref, const std::string& manifest_bytes,
                                 const std::string& manifest_media_type,
                                 const std::vector<oci::Descriptor>& blobs,
                                 const std::function<std::string(const std::string&)>& locate,
                                 const std::vector<std::string>& mount_from) {
  const std::string host = ref.registry;
  std::vector<std::string> scopes = {"repository:" + ref.repository + ":pull,push"};
  for (const auto& m : mount_from) {
    if (m != ref.repository) scopes.push_back("repository:" + m + ":pull");
  }
  const std::string digest = oci::digest_of(manifest_bytes);
  if (!ref.digest.empty() && ref.digest != digest) {
    return Error::invalid("push " + ref.str() + ": manifest bytes hash to " + digest);
  }
  std::vector<oci::Descriptor> uniq;
  std::set<std::string> seen;
  for (const auto& b : blobs) {
    if (seen.insert(b.digest).second) uniq.push_back(b);
  }
  Status st = run_bounded(
      uniq.size(), impl_->opts.max_concurrency, [&](size_t i, std::atomic<bool>& cancel) -> Status {
        // No local copy is fine while the registry has the blob or can mount it.
        std::string path = locate(uniq[i].digest);
        for (int attempt = 1;; ++attempt) {
          Status s = impl_->push_blob(host, ref.repository, scopes, uniq[i], path, mount_from);
          if (s.ok() || s.error().code() != Errc::kIo || attempt >= impl_->opts.max_attempts ||
              cancel) {
            return s;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(
              static_cast<int64_t>(impl_->opts.backoff_ms) << std::min(attempt - 1, 6)));
        }
      });
  if (!st.ok()) return std::move(st).error().wrap("pushing " + ref.str());
  HttpRequest req;
  req.method = "PUT";
  req.url = "/v2/" + ref.repository + "/manifests/" + (ref.tag.empty() ? digest : ref.tag);
  req.body = manifest_bytes;
  req.headers.push_back("Content-Type: " + manifest_media_type);
  OCIB_ASSIGN_OR_RETURN(HttpResponse r,
                        impl_->call_retrying(host, scopes, req, "pushing manifest " + ref.str()));
  if (r.status != 201 && r.status != 200) {
    return Error(Errc::kGeneric, "pushing manifest " + ref.str() + ": " + registry_error(r));
  }
  std::string hdr = r.header("docker-content-digest");
  if (valid_digest(hdr) && hdr != digest) {
    return Error(Errc::kCorrupt, "pushing " + ref.str() + ": registry stored digest " + hdr +
                                     ", expected " + digest);
  }
  return digest;
}

}  // namespace ocib::registry
