#include "registry/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "base/fd.h"

namespace ocib::registry {

namespace {

std::once_flag g_curl_init;

std::string lower(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

struct Transfer {
  const HttpRequest* req;
  HttpResponse* resp;
  CURL* curl;
  bool started = false;  // on_start called for the current response
  bool streaming = false;
  bool aborted = false;
  // body source
  int fd = -1;
  int64_t sent = 0;
};

size_t header_cb(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  std::string_view line(data, len);
  if (line.rfind("HTTP/", 0) == 0) {  // a new response (redirect, 100-continue, auth retry)
    t->resp->headers.clear();
    t->started = false;
    t->streaming = false;
    return len;
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty()) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300 && !t->started) {
      t->started = true;
      if (!t->req->on_data && t->req->method != "HEAD") {
        // An in-memory body announced bigger than the limit is refused before it is read.
        curl_off_t announced = -1;
        curl_easy_getinfo(t->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced);
        if (announced > static_cast<curl_off_t>(t->req->max_body)) {
          t->resp->too_large = true;
          t->aborted = true;
          return 0;
        }
      }
      t->streaming = static_cast<bool>(t->req->on_data);
      if (t->req->on_start && !t->req->on_start(code)) {
        t->aborted = true;
        return 0;
      }
    }
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  t->resp->headers.emplace_back(lower(line.substr(0, colon)), std::string(v));
  return len;
}

size_t write_cb(char* data, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  if (t->streaming) {
    if (!t->req->on_data(std::string_view(data, len))) {
      t->aborted = true;
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->req->max_body) {
    t->resp->too_large = true;
    t->aborted = true;
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t read_cb(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  const HttpRequest& r = *t->req;
  int64_t total = r.body_file.empty() ? static_cast<int64_t>(r.body.size()) : r.body_length;
  size_t want = std::min<int64_t>(static_cast<int64_t>(size * n), total - t->sent);
  if (want == 0) return 0;
  if (r.body_file.empty()) {
    std::memcpy(buf, r.body.data() + t->sent, want);
    t->sent += static_cast<int64_t>(want);
    return want;
  }
  ssize_t got;
  do {
    got = ::pread(t->fd, buf, want, r.body_offset + t->sent);
  } while (got < 0 && errno == EINTR);
  if (got <= 0) return CURL_READFUNC_ABORT;  // file shrank under us
  t->sent += got;
  if (r.on_sent) r.on_sent(t->sent);
  return static_cast<size_t>(got);
}

int seek_cb(void* ud, curl_off_t off, int origin) {
  auto* t = static_cast<Transfer*>(ud);
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  t->sent = off;
  return CURL_SEEKFUNC_OK;
}

}  // namespace

struct Http::Impl {
  std::string user_agent;
  CURLSH* share = nullptr;
  std::mutex locks[CURL_LOCK_DATA_LAST];

  static void lock(CURL*, curl_lock_data d, curl_lock_access, void* ud) {
    static_cast<Impl*>(ud)->locks[d].lock();
  }
  static void unlock(CURL*, curl_lock_data d, void* ud) {
    static_cast<Impl*>(ud)->locks[d].unlock();
  }
};

Http::Http(std::string user_agent) : impl_(std::make_unique<Impl>()) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->user_agent = std::move(user_agent);
  impl_->share = curl_share_init();
  curl_share_setopt(impl_->share, CURLSHOPT_LOCKFUNC, &Impl::lock);
  curl_share_setopt(impl_->share, CURLSHOPT_UNLOCKFUNC, &Impl::unlock);
  curl_share_setopt(impl_->share, CURLSHOPT_USERDATA, impl_.get());
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
}

Http::~Http() { curl_share_cleanup(impl_->share); }

std::string Http::escape(std::string_view s) {
  char* e = curl_easy_escape(nullptr, s.data(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

HttpResponse Http::perform(const HttpRequest& req, const TlsConfig& tls) {
  HttpResponse resp;
  CURL* c = curl_easy_init();
  if (!c) {
    resp.curl_code = CURLE_FAILED_INIT;
    resp.curl_error = "curl_easy_init failed";
    return resp;
  }
  Transfer t{&req, &resp, c};
  UniqueFd body_fd;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_SHARE, impl_->share);
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, impl_->user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled or trickling transfer fails (the caller may retry): without this a server
  // sending a byte now and then holds a fetch forever.
  if (req.low_speed_limit > 0 && req.low_speed_time > 0) {
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, req.low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, req.low_speed_time);
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (req.follow_redirects) {
    // libcurl drops our Authorization header when a redirect leaves the host.
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  }
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
  curl_blob ca{};
  if (!tls.ca_pem.empty()) {
    ca.data = const_cast<char*>(tls.ca_pem.data());
    ca.len = tls.ca_pem.size();
    ca.flags = CURL_BLOB_NOCOPY;
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!tls.client_cert.empty()) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, tls.client_cert.c_str());
    curl_easy_setopt(c, CURLOPT_SSLKEY, tls.client_key.c_str());
  }
  curl_slist* hdrs = nullptr;
  for (const auto& h : req.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET") {
    int64_t len = static_cast<int64_t>(req.body.size());
    if (!req.body_file.empty()) {
      body_fd.reset(::open(req.body_file.c_str(), O_RDONLY | O_CLOEXEC));
      if (!body_fd.valid()) {
        resp.curl_code = CURLE_READ_ERROR;
        resp.curl_error = "cannot open " + req.body_file + ": " + std::strerror(errno);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        return resp;
      }
      t.fd = body_fd.get();
      len = req.body_length;
    }
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(len));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    hdrs = curl_slist_append(hdrs, "Expect:");
    bool has_ct = false;
    for (const auto& h : req.headers) has_ct |= lower(h).rfind("content-type:", 0) == 0;
    if (!has_ct) hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (rc != CURLE_OK) {
    resp.curl_code = rc;
    resp.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (t.aborted && rc == CURLE_WRITE_ERROR) resp.curl_error = "transfer aborted";
    if (resp.too_large) {
      resp.curl_error = "response larger than the " + std::to_string(req.max_body) + "-byte limit";
    }
    // libcurl reports the low-speed limit as a timeout; the connect timeout is the other one.
    if (rc == CURLE_OPERATION_TIMEDOUT && req.low_speed_limit > 0 &&
        std::strstr(resp.curl_error.c_str(), "too slow") != nullptr) {
      resp.too_slow = true;
    }
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return resp;
}

std::string HttpResponse::header(std::string_view name) const {
  std::string n = lower(name);
  for (const auto& [k, v] : headers) {
    if (k == n) return v;
  }
  return {};
}

std::vector<std::string> HttpResponse::all(std::string_view name) const {
  std::string n = lower(name);
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == n) out.push_back(v);
  }
  return out;
}

bool transient_curl_error(int code) {
  switch (code) {
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool tls_verify_error(int code) { return code == CURLE_PEER_FAILED_VERIFICATION; }

bool tls_handshake_error(int code) { return code == CURLE_SSL_CONNECT_ERROR; }

}  // namespace ocib::registry
