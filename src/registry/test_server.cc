#include "registry/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <thread>

namespace ocib::registry::testing {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 206:
      return "Partial Content";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    default:
      return "Status";
  }
}

int listen_loopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    std::abort();
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

}  // namespace

int free_port() {
  int port = 0;
  int fd = listen_loopback(&port);
  ::close(fd);
  return port;
}

TestServer::TestServer(Handler h) : handler_(std::move(h)) {
  listen_fd_ = listen_loopback(&port_);
  thread_ = std::thread([this] { serve(); });
}

TestServer::~TestServer() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  thread_.join();
  ::close(listen_fd_);
}

void TestServer::serve() {
  while (!stop_) {
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (stop_) return;
      continue;
    }
    handle(c);
    ::close(c);
  }
}

void TestServer::handle(int fd) {
  std::string buf;
  char tmp[65536];
  size_t hdr_end;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while ((hdr_end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return;
    buf.append(tmp, static_cast<size_t>(n));
    // A TLS ClientHello: this server speaks plain HTTP only, so hang up as a real one would.
    if (buf[0] == '\x16') return;
  }
  TestRequest req;
  std::string head = buf.substr(0, hdr_end);
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.find(' ', sp1 + 1);
  req.method = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string h = head.substr(pos, e - pos);
    size_t colon = h.find(':');
    if (colon != std::string::npos) {
      size_t v = colon + 1;
      while (v < h.size() && h[v] == ' ') ++v;
      req.headers[lower(h.substr(0, colon))] = h.substr(v);
    }
    pos = e + 2;
  }
  req.body = buf.substr(hdr_end + 4);
  size_t want = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
    want = std::strtoul(it->second.c_str(), nullptr, 10);
  }
  while (req.body.size() < want) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return;
    req.body.append(tmp, static_cast<size_t>(n));
  }
  TestResponse resp = handler_(req);
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) + "\r\n";
  for (const auto& [k, v] : resp.headers) out += k + ": " + v + "\r\n";
  out += "Content-Length: " + std::to_string(resp.body.size()) + "\r\nConnection: close\r\n\r\n";
  if (req.method != "HEAD" && resp.trickle_bytes_per_sec > 0) {
    if (!send_all(fd, out.data(), out.size())) return;
    const auto gap = std::chrono::microseconds(1000000 / resp.trickle_bytes_per_sec);
    for (size_t i = 0; i < resp.body.size() && !stop_; ++i) {
      if (!send_all(fd, resp.body.data() + i, 1)) return;  // the client hung up
      std::this_thread::sleep_for(gap);
    }
    return;
  }
  if (req.method != "HEAD") {
    if (resp.truncate_at >= 0) {
      out.append(resp.body, 0, static_cast<size_t>(resp.truncate_at));
    } else {
      out += resp.body;
    }
  }
  send_all(fd, out.data(), out.size());
}

}  // namespace ocib::registry::testing
