#include "build/progress.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

namespace ocib::build {

namespace {

class PlainReporter : public Reporter {
 public:
  void started(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    starts_[id] = std::chrono::steady_clock::now();
    line("#" + std::to_string(id) + " " + std::string(name));
  }
  void log(int id, std::string_view text) override {
    std::lock_guard<std::mutex> lk(mu_);
    char ts[32];
    double t = 0;
    if (auto it = starts_.find(id); it != starts_.end())
      t = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second).count();
    std::snprintf(ts, sizeof ts, "%.3f", t);
    line("#" + std::to_string(id) + " " + ts + " " + std::string(text));
  }
  void done(int id, double seconds) override {
    std::lock_guard<std::mutex> lk(mu_);
    char buf[64];
    std::snprintf(buf, sizeof buf, "#%d DONE %.2fs", id, seconds);
    line(buf);
  }
  void cached(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    line("#" + std::to_string(id) + " " + std::string(name));
    line("#" + std::to_string(id) + " CACHED");
  }
  void failed(int id, std::string_view message) override {
    std::lock_guard<std::mutex> lk(mu_);
    line("#" + std::to_string(id) + " ERROR: " + std::string(message));
  }
  void note(std::string_view text) override {
    std::lock_guard<std::mutex> lk(mu_);
    line(std::string(text));
  }

 private:
  void line(const std::string& s) {
    std::string out = s + "\n";
    std::fwrite(out.data(), 1, out.size(), stderr);
  }
  std::mutex mu_;
  std::map<int, std::chrono::steady_clock::time_point> starts_;
};

class QuietReporter : public Reporter {
 public:
  void started(int, std::string_view) override {}
  void log(int, std::string_view) override {}
  void done(int, double) override {}
  void cached(int, std::string_view) override {}
  void failed(int, std::string_view) override {}
  void note(std::string_view) override {}
};

}  // namespace

std::unique_ptr<Reporter> make_reporter(const std::string& mode) {
  if (mode == "quiet") return std::make_unique<QuietReporter>();
  return std::make_unique<PlainReporter>();
}

}  // namespace ocib::build
