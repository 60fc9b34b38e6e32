#include "progress/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace ocib::progress {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000 && u < 4) {
    b /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.2f%s", b, units[u]);
  return buf;
}

// "sha256:ab12… 12.00MB / 40.00MB 1.2s" as BuildKit's plain mode prints transfers.
std::string format_transfer(std::string_view what, uint64_t current, uint64_t total, double seconds) {
  std::string s = std::string(what) + " " + human_bytes(double(current));
  if (total > 0) s += " / " + human_bytes(double(total));
  char buf[32];
  std::snprintf(buf, sizeof buf, " %.1fs", seconds);
  return s + buf;
}

}  // namespace

std::string terminal_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (true) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // "...\r\n"
    if (size_t cr = line.rfind('\r'); cr != std::string_view::npos) line.remove_prefix(cr + 1);
    out += log::escape_control(line);
    if (nl == std::string_view::npos) break;
    out += '\n';
    text.remove_prefix(nl + 1);
  }
  return out;
}

void Reporter::summary(const BuildSummary& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "summary: %.2fs wall, %d steps run, %d cached, parallelism %.2fx, critical path %.2fs:",
                s.wall, s.ran, s.cached, s.parallelism, s.critical);
  note(buf);
  for (const auto& p : s.path) {
    std::snprintf(buf, sizeof buf, "  %6.2fs  ", p.seconds);
    note(std::string(buf) + p.name + (p.cached ? " (cached)" : ""));
  }
}

namespace {

class PlainReporter : public Reporter {
 public:
  void started(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    starts_[id] = std::chrono::steady_clock::now();
    line("#" + std::to_string(id) + " " + shown(name));
  }
  void log(int id, std::string_view text) override {
    std::lock_guard<std::mutex> lk(mu_);
    char ts[32];
    double t = 0;
    if (auto it = starts_.find(id); it != starts_.end())
      t = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second).count();
    std::snprintf(ts, sizeof ts, "%.3f", t);
    line("#" + std::to_string(id) + " " + ts + " " + shown(text));
  }
  void done(int id, double seconds) override {
    std::lock_guard<std::mutex> lk(mu_);
    char buf[64];
    std::snprintf(buf, sizeof buf, "#%d DONE %.2fs", id, seconds);
    line(buf);
  }
  void cached(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    line("#" + std::to_string(id) + " " + shown(name));
    line("#" + std::to_string(id) + " CACHED");
  }
  void failed(int id, std::string_view message) override {
    std::lock_guard<std::mutex> lk(mu_);
    line("#" + std::to_string(id) + " ERROR: " + shown(message));
  }
  void note(std::string_view text) override {
    std::lock_guard<std::mutex> lk(mu_);
    line(shown(text));
  }
  // One line per second per transfer at most, and one when it completes.
  void transfer(std::string_view what, uint64_t current, uint64_t total) override {
    std::lock_guard<std::mutex> lk(mu_);
    auto now = std::chrono::steady_clock::now();
    auto [it, fresh] = transfers_.try_emplace(std::string(what), TransferState{now, now});
    bool complete = total > 0 && current >= total;
    if (!fresh && !complete && now - it->second.last_print < std::chrono::seconds(1)) return;
    it->second.last_print = now;
    line(format_transfer(what, current, total, std::chrono::duration<double>(now - it->second.start).count()));
    if (complete) transfers_.erase(it);
  }

 private:
  struct TransferState {
    std::chrono::steady_clock::time_point start, last_print;
  };
  std::map<std::string, TransferState> transfers_;
  // On a terminal, step output and names are shown as text; into a file, byte for byte.
  const bool tty_ = isatty(2) == 1;
  std::string shown(std::string_view s) const { return tty_ ? terminal_text(s) : std::string(s); }
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
  // At most ten events a second per transfer, plus the first and the completing one.
  void transfer(std::string_view what, uint64_t current, uint64_t total) override {
    auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto [it, fresh] = last_.try_emplace(std::string(what), now);
      bool complete = total > 0 && current >= total;
      if (!fresh && !complete && now - it->second < std::chrono::milliseconds(100)) return;
      it->second = now;
      if (complete) last_.erase(it);
    }
    nlohmann::json j = {{"type", "transfer"}, {"name", what}, {"current", current}};
    if (total > 0) j["total"] = total;
    emit(std::move(j));
  }
  void summary(const BuildSummary& s) override {
    nlohmann::json path = nlohmann::json::array();
    for (const auto& p : s.path) path.push_back({{"name", p.name}, {"duration", p.seconds}, {"cached", p.cached}});
    emit({{"type", "build.summary"},
          {"wall", s.wall},
          {"ran", s.ran},
          {"cached", s.cached},
          {"parallelism", s.parallelism},
          {"critical_path_duration", s.critical},
          {"critical_path", path}});
  }

 private:
  std::map<std::string, std::chrono::steady_clock::time_point> last_;
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
  // Colour only on a terminal and never with NO_COLOR (--progress=tty into a pipe is plain text).
  TtyReporter() : color_(std::getenv("NO_COLOR") == nullptr && isatty(2)) {
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
    running_[id] = {terminal_text(name), {}, std::chrono::steady_clock::now()};
  }
  void log(int id, std::string_view line) override {
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = running_.find(id); it != running_.end()) {
      it->second.last.push_back(terminal_text(line));
      if (it->second.last.size() > kTailLines) it->second.last.pop_front();
    }
  }
  void transfer(std::string_view what, uint64_t current, uint64_t total) override {
    std::lock_guard<std::mutex> lk(mu_);
    auto now = std::chrono::steady_clock::now();
    auto [it, fresh] = transfers_.try_emplace(std::string(what), Transfer{now, 0, 0});
    it->second.current = current;
    it->second.total = total;
    if (total > 0 && current >= total) {
      permanent_.push_back(paint("\033[32m") + " => " + reset() +
                           format_transfer(terminal_text(what), current, total, std::chrono::duration<double>(now - it->second.start).count()));
      transfers_.erase(it);
    }
  }
  void done(int id, double seconds) override { finish(id, "", seconds, color_ ? "\033[32m" : ""); }
  void cached(int id, std::string_view name) override {
    std::lock_guard<std::mutex> lk(mu_);
    running_.erase(id);
    permanent_.push_back(paint("\033[34m") + " => CACHED " + reset() + "#" + std::to_string(id) + " " + terminal_text(name));
  }
  void failed(int id, std::string_view message) override {
    std::lock_guard<std::mutex> lk(mu_);
    std::string name = running_.count(id) ? running_[id].name : "";
    running_.erase(id);
    permanent_.push_back(paint("\033[31m") + " => ERROR  " + reset() + "#" + std::to_string(id) + " " + name);
    permanent_.push_back("    " + terminal_text(message));
  }
  void note(std::string_view line) override {
    std::lock_guard<std::mutex> lk(mu_);
    permanent_.push_back(terminal_text(line));
  }

 private:
  static constexpr size_t kTailLines = 3;  // output lines shown under a running step
  struct Running {
    std::string name;
    std::deque<std::string> last;
    std::chrono::steady_clock::time_point start;
  };
  struct Transfer {
    std::chrono::steady_clock::time_point start;
    uint64_t current, total;
  };
  std::map<std::string, Transfer> transfers_;
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
    // Lines longer than the terminal would wrap and break the cursor-up arithmetic.
    size_t width = 100;
    if (winsize ws{}; ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) width = ws.ws_col - 1;
    auto clip = [width](const std::string& l, size_t indent) { return l.substr(0, width > indent ? width - indent : 0); };
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
        out += paint("\033[33m") + " => " + buf + " " + reset() + "#" + std::to_string(id) + " " + clip(r.name, 20) + "\n";
        ++live_lines_;
        for (const auto& l : r.last) {
          out += "      " + clip(l, 6) + "\n";
          ++live_lines_;
        }
      }
      for (auto& [what, t] : transfers_) {
        double secs = std::chrono::duration<double>(now - t.start).count();
        std::string bar;
        if (t.total > 0) {
          int filled = int(20.0 * double(t.current) / double(t.total));
          bar = "[" + std::string(size_t(std::min(filled, 20)), '=') + std::string(size_t(20 - std::min(filled, 20)), ' ') + "] ";
        }
        std::string rate = secs > 0 ? " " + human_bytes(double(t.current) / secs) + "/s" : "";
        out += paint("\033[33m") + " => " + reset() + bar + format_transfer(terminal_text(what), t.current, t.total, secs) + rate + "\n";
        ++live_lines_;
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

}  // namespace ocib::progress
