#pragma once
// A thin libcurl transport: one request at a time per call, any number of threads.
// Connections, TLS sessions and DNS are shared between calls.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"

namespace ocib::registry {

struct TlsConfig {
  bool verify = true;
  std::string ca_pem;       // extra trusted CAs (PEM), added to the system store
  std::string client_cert;  // PEM file paths
  std::string client_key;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // Request body: bytes, or a range of a file when body_file is set.
  std::string body;
  std::string body_file;
  int64_t body_offset = 0;
  int64_t body_length = 0;
  bool follow_redirects = false;
  /// Called once per 2xx response before its body, with the status; false aborts.
  std::function<bool(long status)> on_start;
  /// Receives a 2xx response body as it streams; false aborts. Unset: body kept in memory.
  std::function<bool(std::string_view)> on_data;
  /// Called as the request body goes out, with the bytes of it sent so far.
  std::function<void(int64_t sent)> on_sent;
  size_t max_body = 8 << 20;  // in-memory body limit
  std::string max_body_what;  // names that limit in errors ("the 4 MiB manifest limit")
  /// A transfer slower than low_speed_limit bytes/s for low_speed_time seconds fails with
  /// HttpResponse::too_slow (CURLOPT_LOW_SPEED_LIMIT / CURLOPT_LOW_SPEED_TIME); 0 disables.
  long low_speed_limit = 1024;
  long low_speed_time = 60;
};

struct HttpResponse {
  int curl_code = 0;       // 0: the exchange completed (any HTTP status)
  std::string curl_error;  // libcurl's message when curl_code != 0
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased, last response
  std::string body;  // error bodies always; 2xx bodies when no on_data
  /// The in-memory body would have exceeded HttpRequest::max_body (by its Content-Length or by
  /// the bytes that arrived); the transfer was stopped there.
  bool too_large = false;
  /// The transfer fell under the request's low-speed limit and was stopped.
  bool too_slow = false;
  std::string header(std::string_view name) const;
  std::vector<std::string> all(std::string_view name) const;
};

/// Whether a failed transfer is worth retrying (dropped connection, timeout, reset).
bool transient_curl_error(int code);
/// Whether the failure was certificate verification.
bool tls_verify_error(int code);
/// Whether the failure looks like TLS spoken to a plain-HTTP server.
bool tls_handshake_error(int code);

class Http {
 public:
  explicit Http(std::string user_agent);
  ~Http();
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;
  HttpResponse perform(const HttpRequest& req, const TlsConfig& tls);
  /// URL-escapes a query value.
  static std::string escape(std::string_view s);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ocib::registry
