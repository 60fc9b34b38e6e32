#include "build/progress.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

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

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One JSON event per line on stderr, for tools.
class RawJsonReporter : public Reporter {
 public:
  void started(int id, std::string_view name) override {
    emit({{"type", "vertex.started"}, {"id", id}, {"name", name}});
  }
  void log(int id, std::string_view line) override { emit({{"type", "log"}, {"id", id}, {"data", line}}); }
  void done(int id, double seconds) override {
    emit({{"type", "vertex.completed"}, {"id", id}, {"duration", seconds}});
  }
  void cached(int id, std::string_view name) override {
    emit({{"type", "vertex.cached"}, {"id", id}, {"name", name}});
  }
  void failed(int id, std::string_view message) override {
    emit({{"type", "vertex.error"}, {"id", id}, {"error", message}});
  }
  void note(std::string_view line) override { emit({{"type", "note"}, {"message", line}}); }

 private:
  void emit(nlohmann::json j) {
    j["time"] = now_seconds();
    std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    std::lock_guard<std::mutex> lk(mu_);
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
  }
  std::mutex mu_;
};

// A live view for terminals: finished steps print once, running ones are redrawn below with
// their elapsed time and last output line, like buildx's tty mode.
class TtyReporter : public Reporter {
 public:
  TtyReporter() : color_(std::getenv("NO_COLOR") == nullptr) {
    thread_ = std::thread([this] { loop(); });
  }
  ~TtyReporter() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void started(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    running_[id] = {std::string(name), "", std::chrono::steady_clock::now()};
  }
  void log(int id, std::string_view line) override {
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = running_.find(id); it != running_.end()) it->second.last = std::string(line);
  }
  void done(int id, double seconds) override { finish(id, "", seconds, color_ ? "\033[32m" : ""); }
  void cached(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    running_.erase(id);
    permanent_.push_back(paint("\033[34m") + " => CACHED " + reset() + "#" + std::to_string(id) + " " + std::string(name));
  }
  void failed(int id, std::string_view message) override {
    std::lock_guard<std::mutex> lk(mu_);
    std::string name = running_.count(id) ? running_[id].name : "";
    running_.erase(id);
    permanent_.push_back(paint("\033[31m") + " => ERROR  " + reset() + "#" + std::to_string(id) + " " + name);
    permanent_.push_back("    " + std::string(message));
  }
  void note(std::string_view line) override {
    std::lock_guard<std::mutex> lk(mu_);
    permanent_.push_back(std::string(line));
  }

 private:
  struct Running {
    std::string name, last;
    std::chrono::steady_clock::time_point start;
  };
  std::string paint(const char* c) const { return color_ ? c : ""; }
  std::string reset() const { return color_ ? "\033[0m" : ""; }
  void finish(int id, const std::string&, double seconds, const char* c) {
    std::lock_guard<std::mutex> lk(mu_);
    std::string name = running_.count(id) ? running_[id].name : "";
    running_.erase(id);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%6.1fs", seconds);
    permanent_.push_back(std::string(c) + " => " + buf + " " + reset() + "#" + std::to_string(id) + " " + name);
  }
  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait_for(lk, std::chrono::milliseconds(100), [this] { return stop_; });
      draw();
      if (stop_) return;
    }
  }
  // Erases the previous live block, prints new permanent lines, then the live block again.
  void draw() {
    std::string out;
    for (int i = 0; i < live_lines_; ++i) out += "\033[1A\033[2K";
    for (auto& l : permanent_) out += l + "\n";
    permanent_.clear();
    live_lines_ = 0;
    if (!stop_) {
      auto now = std::chrono::steady_clock::now();
      for (auto& [id, r] : running_) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%6.1fs", std::chrono::duration<double>(now - r.start).count());
        out += paint("\033[33m") + " => " + buf + " " + reset() + "#" + std::to_string(id) + " " + r.name.substr(0, 100) + "\n";
        ++live_lines_;
        if (!r.last.empty()) {
          out += "      " + r.last.substr(0, 100) + "\n";
          ++live_lines_;
        }
      }
    }
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
  }
  bool color_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int live_lines_ = 0;
  std::map<int, Running> running_;
  std::deque<std::string> permanent_;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Reporter> make_reporter(const std::string& mode) {
  if (mode == "quiet") return std::make_unique<QuietReporter>();
  if (mode == "rawjson") return std::make_unique<RawJsonReporter>();
  if (mode == "tty" || (mode == "auto" && isatty(2))) return std::make_unique<TtyReporter>();
  return std::make_unique<PlainReporter>();
}

}  // namespace ocib::build
