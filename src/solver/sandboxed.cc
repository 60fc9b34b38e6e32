#include "solver/sandboxed.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "solver/flatten.h"

namespace ocib::solver {

namespace {

/// Reads a step's output pipe on its own thread and forwards lines to the reporter.
class OutputPump {
 public:
  OutputPump(progress::Reporter& r, int id) : reporter_(r), id_(id) {}
  ~OutputPump() { stop(); }

  Status start() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return Error::from_errno("pipe", errno);
    read_.reset(p[0]);
    write_.reset(p[1]);
    int e = eventfd(0, EFD_CLOEXEC);
    if (e < 0) return Error::from_errno("eventfd", errno);
    stop_.reset(e);
    thread_ = std::thread([this] { loop(); });
    return {};
  }
  int write_fd() const { return write_.get(); }

  /// Closes our write end and drains what is buffered. Stray holders of the write end (a
  /// concurrent sandbox's forked helper) cannot delay this: we stop on the event, not on EOF.
  void stop() {
    if (!thread_.joinable()) return;
    write_.reset();
    uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    thread_.join();
  }
  std::string last_lines() const {
    std::string out;
    for (const auto& l : tail_) out += l + "\n";
    return out;
  }

 private:
  void loop() {
    std::string buf;
    char chunk[8192];
    bool stopping = false;
    for (;;) {
      struct pollfd fds[2] = {{read_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      int rc = poll(fds, 2, stopping ? 0 : -1);
      if (rc < 0 && errno == EINTR) continue;
      if (fds[1].revents & POLLIN) stopping = true;
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        ssize_t n = ::read(read_.get(), chunk, sizeof chunk);
        if (n > 0) {
          buf.append(chunk, static_cast<size_t>(n));
          flush_lines(buf, false);
          continue;
        }
        if (n == 0) break;  // EOF
      }
      if (stopping && rc == 0) break;
      if (stopping && !(fds[0].revents & POLLIN)) break;
    }
    flush_lines(buf, true);
  }
  void flush_lines(std::string& buf, bool all) {
    size_t pos;
    while ((pos = buf.find('\n')) != std::string::npos) {
      emit(buf.substr(0, pos));
      buf.erase(0, pos + 1);
    }
    if (all && !buf.empty()) {
      emit(buf);
      buf.clear();
    }
  }
  void emit(const std::string& line) {
    reporter_.log(id_, line);
    tail_.push_back(line);
    if (tail_.size() > 10) tail_.pop_front();
  }

  progress::Reporter& reporter_;
  int id_;
  UniqueFd read_, write_, stop_;
  std::thread thread_;
  std::deque<std::string> tail_;
};

}  // namespace


Result<SandboxRun> run_reported(sandbox::Spec& spec, const IdMapping& ids, progress::Reporter& reporter, int id) {
  OutputPump pump(reporter, id);
  OCIB_TRY(pump.start());
  spec.output_fd = pump.write_fd();
  auto outcome = sandbox::run(spec, ids);
  pump.stop();
  if (!outcome.ok()) return std::move(outcome).error();
  std::string tail = pump.last_lines();
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  return SandboxRun{*outcome, tail};
}

Result<std::string> run_function(sandbox::Spec& spec, const IdMapping& ids, progress::Reporter& reporter, int id,
                                 SandboxFunction fn) {
  // The result travels as a JSON file in a directory of the run's scratch area, handed in as
  // one more host directory (after pivot_root only the fd reaches it).
  const std::string dir = fs::join(spec.scratch, "result");
  OCIB_TRY(fs::mkdirs(dir, 0700));
  // The sandbox hands over the views', then the host directories', then the passed fds.
  const size_t result_at = spec.views.size() + spec.host_dirs.size();
  spec.host_dirs.push_back(dir);
  spec.in_sandbox = [fn = std::move(fn), result_at](const std::vector<int>& all) -> int {
    std::vector<int> fds(all);
    const std::string out = "/proc/self/fd/" + std::to_string(fds.at(result_at)) + "/result.json";
    fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(result_at));
    Result<std::string> r = fn(fds);
    nlohmann::json j;
    if (r.ok()) {
      j = {{"ok", true}, {"payload", *r}};
    } else {
      j = {{"ok", false}, {"code", static_cast<int>(r.error().code())}, {"message", r.error().str()}};
    }
    if (!fs::write_file_atomic(out, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)).ok()) return 2;
    return r.ok() ? 0 : 1;
  };
  OCIB_ASSIGN_OR_RETURN(SandboxRun run, run_reported(spec, ids, reporter, id));
  auto text = fs::read_file(fs::join(dir, "result.json"));
  auto j = text.ok() ? nlohmann::json::parse(*text, nullptr, false) : nlohmann::json();
  if (!j.is_object() || !j.contains("ok")) {
    std::string how = run.outcome.signal ? "killed by signal " + std::to_string(run.outcome.signal)
                                         : "exit code " + std::to_string(run.outcome.exit_code);
    return Error(Errc::kIo, "sandboxed work ended without a result (" + how + ")" + (run.tail.empty() ? "" : ": " + run.tail));
  }
  if (j.value("ok", false)) return j.value("payload", std::string());
  int code = j.value("code", static_cast<int>(Errc::kGeneric));
  if (code < 0 || code > static_cast<int>(Errc::kSecurity)) code = static_cast<int>(Errc::kGeneric);
  return Error(static_cast<Errc>(code), j.value("message", std::string("failed")));
}

std::vector<std::string> lowers_of(const store::Store& st, const plan::Step* s) {
  std::vector<std::string> chain;
  for (; s; s = s->parent) chain.push_back(s->result.snapshot);
  return flatten::lowers(st, chain);  // a deep chain's bottom as one flattened lower
}

}  // namespace ocib::solver
