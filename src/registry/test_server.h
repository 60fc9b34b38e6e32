#pragma once
// A tiny loopback HTTP/1.1 server for tests: one connection at a time, "Connection: close".

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ocib::registry::testing {

struct TestRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

struct TestResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Send only this many body bytes (Content-Length stays the full size), then drop the
  /// connection; -1 sends everything.
  long truncate_at = -1;
  /// Send the body at this many bytes per second (a trickling server); 0: at once.
  int trickle_bytes_per_sec = 0;
};

class TestServer {
 public:
  using Handler = std::function<TestResponse(const TestRequest&)>;
  explicit TestServer(Handler h);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  void serve();
  void handle(int fd);
  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A free loopback TCP port (bound then released).
int free_port();

}  // namespace ocib::registry::testing
