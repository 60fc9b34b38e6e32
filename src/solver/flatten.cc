#include "solver/flatten.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "base/fs.h"
#include "base/log.h"
#include "base/sha256.h"
#include "sandbox/sandbox.h"
#include "sandbox/snapshotter.h"
#include "solver/sandboxed.h"

namespace ocib::solver::flatten {

namespace {

std::optional<size_t> env_size(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (*end || n == 0) {
    log::warn(std::string(name) + "=" + v + " is not a positive number; ignored");
    return std::nullopt;
  }
  return static_cast<size_t>(n);
}

// Linux 6.8 added "lowerdir+" (one layer per fsconfig call); before it the layers travel in
// one mount(2) data string, at most a page.
bool kernel_takes_layers_one_by_one() {
  struct utsname u;
  if (::uname(&u) != 0) return false;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 8);
}

// What the sandbox's "lowerdir=A:B:…,upperdir=U,workdir=W,userxattr" holds with this store's
// paths (snapshots and flats are ROOT/s/<20> and ROOT/f/<20>; the upper ROOT/tmp/<pid>-up-<10>,
// the workdir beneath ROOT/tmp/<pid>-run-<10>/), in 4095 bytes (a page with its NUL).
size_t page_fit(const std::string& root) {
  auto real = fs::real_path(root);
  const size_t r = real.ok() ? real->size() : root.size();
  const size_t fixed = std::string("lowerdir=,upperdir=,workdir=,userxattr").size() + 2 * r + 2 * 40;
  const size_t per = r + 3 + 20 + 1;
  return fixed >= 4095 ? 1 : std::max<size_t>(1, (4095 - fixed) / per);
}

std::string chain_step(const std::string& below, const std::string& id) {
  return Sha256::hex(below + "\n" + id);
}

}  // namespace

Policy Policy::for_store(const std::string& root) {
  Policy p;
  if (const char* v = std::getenv("OCIB_FLATTEN"); v && (std::string(v) == "0" || std::string(v) == "off"))
    p.enabled = false;
  if (auto n = env_size("OCIB_FLATTEN_AFTER")) p.after = *n;
  if (auto n = env_size("OCIB_FLATTEN_EVERY")) p.every = *n;
  p.max_lowers = kernel_takes_layers_one_by_one() ? 500 : std::min<size_t>(500, page_fit(root));
  if (auto n = env_size("OCIB_FLATTEN_MAX")) p.max_lowers = std::min(p.max_lowers, std::max<size_t>(2, *n));
  return p;
}

std::vector<std::string> flat_ids(const std::vector<std::string>& bottom_up) {
  std::vector<std::string> out(bottom_up.size() + 1);
  std::string h;
  for (size_t i = 0; i < bottom_up.size(); ++i) {
    h = chain_step(h, bottom_up[i]);
    out[i + 1] = h.substr(0, 20);
  }
  return out;
}

Flattener::Flattener(const store::Store& st, const IdMapping& ids, Policy policy)
    : store_(st), ids_(ids), policy_(policy) {}

Flattener::~Flattener() {
  std::deque<Job> dropped;
  {
    std::lock_guard lk(mu_);
    stop_ = true;
    dropped.swap(queue_);
  }
  cv_.notify_all();
  for (auto& j : dropped) j.done->set_value(Error(Errc::kCancelled, "flatten cancelled"));
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> Flattener::lowers(const std::vector<std::string>& chain) {
  std::vector<std::string> out;
  const size_t n = chain.size();
  auto plain = [&](size_t upto) {
    for (size_t i = 0; i < upto; ++i) out.push_back(store_.snapshot_path(chain[i]));
  };
  if (!policy_.enabled || (n <= policy_.after && n <= policy_.max_lowers)) {
    plain(n);
    return out;
  }
  std::vector<std::string> bottom_up(chain.rbegin(), chain.rend());
  // n short hashes (~0.5 ms at depth 1,000): not worth remembering (a --link layer's
  // snapshot sits in several chains, so a snapshot id alone does not name its chain).
  std::vector<std::string> ids = flat_ids(bottom_up);
  const size_t want = n / policy_.every * policy_.every;
  size_t best = 0;
  {
    // Flats this process made or saw at any depth (a synchronous one need not be at a multiple
    // of `every`), then the store's at those multiples (other processes').
    std::lock_guard lk(mu_);
    for (size_t b = n; b > 0 && !best; --b)
      if (known_.count(ids[b])) best = b;
  }
  for (size_t b = want; b > best && b >= policy_.every; b -= policy_.every)
    if (store_.has_flat(ids[b])) {
      best = b;
      std::lock_guard lk(mu_);
      known_.insert(ids[b]);
      break;
    }
  if (want > best && !failed(ids[want])) {
    std::vector<std::string> part(bottom_up.begin(), bottom_up.begin() + static_cast<std::ptrdiff_t>(want));
    (void)enqueue(std::move(part), ids[want], false);
  }
  if (n - best + (best ? 1 : 0) > policy_.max_lowers) {
    // This step cannot be mounted with what is ready: flatten now, at the boundary if that is
    // enough, else the whole chain (so the next steps stack on it too).
    size_t depth = want > 0 && n - want + 1 <= policy_.max_lowers ? want : n;
    auto made = make(chain, depth);
    if (made.ok()) {
      best = depth;
      ids[best] = *made;
    } else {
      log::warn("could not flatten the bottom " + std::to_string(depth) + " of " + std::to_string(n) +
                " snapshots (overlayfs stacks at most " + std::to_string(policy_.max_lowers) +
                " here): " + made.error().str());
    }
  }
  plain(n - best);
  if (best) out.push_back(store_.flat_path(ids[best]));
  if (log::debug_enabled())
    log::debug("lowers: " + std::to_string(n) + " snapshots as " + std::to_string(out.size()) + " lowerdirs" +
               (best ? " (the bottom " + std::to_string(best) + " flattened)" : ""));
  return out;
}

bool Flattener::failed(const std::string& id) {
  std::lock_guard lk(mu_);
  return failed_.count(id) > 0;
}

Result<std::string> Flattener::make(const std::vector<std::string>& chain, size_t depth) {
  if (depth == 0 || depth > chain.size()) return Error::invalid("flatten: depth out of range");
  std::vector<std::string> bottom_up(chain.rbegin(), chain.rbegin() + static_cast<std::ptrdiff_t>(depth));
  const std::string id = flat_ids(bottom_up).back();
  std::shared_ptr<std::promise<Status>> mine;
  std::vector<std::string> work;
  std::shared_future<Status> theirs;
  {
    std::lock_guard lk(mu_);
    auto queued = std::find_if(queue_.begin(), queue_.end(), [&](const Job& j) { return j.id == id; });
    if (queued != queue_.end()) {
      // Not started: run it here rather than wait for the queue before it.
      mine = queued->done;
      work = std::move(queued->bottom_up);
      queue_.erase(queued);
    } else if (auto it = inflight_.find(id); it != inflight_.end()) {
      theirs = it->second;
    } else {
      mine = std::make_shared<std::promise<Status>>();
      inflight_[id] = mine->get_future().share();
      work = std::move(bottom_up);
    }
  }
  if (!mine) {
    OCIB_TRY(theirs.get());
    return id;
  }
  Status st = build(work, id);
  {
    std::lock_guard lk(mu_);
    inflight_.erase(id);
  }
  mine->set_value(st);
  OCIB_TRY(st);
  return id;
}

std::shared_future<Status> Flattener::enqueue(std::vector<std::string> bottom_up, const std::string& id, bool front) {
  std::lock_guard lk(mu_);
  if (auto it = inflight_.find(id); it != inflight_.end()) return it->second;
  auto done = std::make_shared<std::promise<Status>>();
  auto f = done->get_future().share();
  if (stop_) {
    done->set_value(Error(Errc::kCancelled, "flatten cancelled"));
    return f;
  }
  inflight_[id] = f;
  Job j{std::move(bottom_up), id, done};
  if (front) queue_.push_front(std::move(j));
  else queue_.push_back(std::move(j));
  if (!thread_.joinable()) thread_ = std::thread([this] { worker(); });
  cv_.notify_one();
  return f;
}

void Flattener::worker() {
  // Off the critical path, as packing: the build's own steps come first.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
  for (;;) {
    Job job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Status st = build(job.bottom_up, job.id);
    if (!st.ok()) log::debug("background flatten of " + std::to_string(job.bottom_up.size()) + " snapshots: " + st.error().str());
    {
      std::lock_guard lk(mu_);
      inflight_.erase(job.id);
      if (!st.ok()) failed_.insert(job.id);  // not again in the background (a step that needs it tries)
    }
    job.done->set_value(st);
  }
}

Status Flattener::build(const std::vector<std::string>& bottom_up, const std::string& id) {
  Status st = build_flat(bottom_up, id);
  if (st.ok()) {
    std::lock_guard lk(mu_);
    known_.insert(id);
  }
  return st;
}

Status Flattener::build_flat(const std::vector<std::string>& bottom_up, const std::string& id) {
  if (store_.has_flat(id)) return {};
  OCIB_ASSIGN_OR_RETURN(fs::FileLock lock, store_.lock_key(id));  // another process makes it: wait
  if (store_.has_flat(id)) return {};
  auto t0 = std::chrono::steady_clock::now();
  // Start from the deepest flat below it that exists: only the snapshots above it are merged in.
  const std::vector<std::string> ids = flat_ids(bottom_up);
  size_t base = 0;
  for (size_t b = bottom_up.size() - 1; b > 0 && !base; --b)
    if (store_.has_flat(ids[b])) base = b;
  // Layers as the merge takes them, topmost first: "s" snapshot ids, then the base flat ("f").
  std::vector<std::pair<char, std::string>> layers;
  for (size_t i = bottom_up.size(); i > base; --i) layers.emplace_back('s', bottom_up[i - 1]);
  if (base) layers.emplace_back('f', ids[base]);

  OCIB_ASSIGN_OR_RETURN(std::string dest, store_.make_tmp_dir("flat-"));
  Staging dest_guard(dest, ids_);
  if (::geteuid() == 0 && std::getenv("OCIB_FLATTEN_SANDBOX") == nullptr) {
    // Real root owns every id already: merge here, without a sandbox run (~10 ms of namespaces
    // per flat). The merge follows no symlink of the snapshots.
    std::vector<std::string> paths;
    for (const auto& [kind, name] : layers)
      paths.push_back(kind == 's' ? store_.snapshot_path(name) : store_.flat_path(name));
    OCIB_TRY(sandbox::snapshot::flatten(paths, dest));
    return commit(dest_guard, dest, bottom_up, id, layers.size(), t0);
  }
  OCIB_ASSIGN_OR_RETURN(std::string scratch, store_.make_tmp_dir("flatrun-"));
  Staging scratch_guard(scratch, ids_);
  sandbox::Spec spec;
  spec.upperdir = fs::join(scratch, "upper");
  spec.scratch = fs::join(scratch, "run");
  OCIB_TRY(fs::mkdirs(spec.upperdir, 0755));
  OCIB_TRY(fs::mkdirs(spec.scratch, 0755));
  spec.etc_files = false;
  // In a user namespace with the build's ids: the snapshots' files keep their (subordinate)
  // owners, and the new directories get them.
  spec.host_dirs = {fs::join(store_.root(), "s"), fs::join(store_.root(), "f"), dest};
  spec.in_sandbox = [&layers](const std::vector<int>& fds) -> int {
    auto at = [&](int fd) { return "/proc/self/fd/" + std::to_string(fd); };
    std::vector<std::string> paths;
    for (const auto& [kind, name] : layers) paths.push_back(at(kind == 's' ? fds.at(0) : fds.at(1)) + "/" + name);
    Status st = sandbox::snapshot::flatten(paths, at(fds.at(2)));
    if (st.ok()) return 0;
    std::string msg = st.error().str() + "\n";
    (void)!::write(2, msg.data(), msg.size());
    return 1;
  };
  int out = ::memfd_create("flatten", MFD_CLOEXEC);
  if (out < 0) return Error::from_errno("memfd_create", errno);
  UniqueFd out_guard(out);
  spec.output_fd = out;
  auto ran = sandbox::run(spec, ids_);
  if (!ran.ok()) return std::move(ran).error().wrap("flattening " + std::to_string(bottom_up.size()) + " snapshots");
  if (ran->exit_code != 0) {
    std::string said(4096, '\0');
    ssize_t n = ::pread(out, said.data(), said.size(), 0);
    said.resize(n > 0 ? static_cast<size_t>(n) : 0);
    while (!said.empty() && said.back() == '\n') said.pop_back();
    return Error(Errc::kIo, "flattening " + std::to_string(bottom_up.size()) + " snapshots failed" +
                                (said.empty() ? "" : ": " + said));
  }
  return commit(dest_guard, dest, bottom_up, id, layers.size(), t0);
}

Status Flattener::commit(Staging& guard, const std::string& dest, const std::vector<std::string>& bottom_up,
                         const std::string& id, size_t merged, std::chrono::steady_clock::time_point t0) {
  OCIB_TRY(store_.commit_flat(dest, id, bottom_up));
  (void)guard.release();
  if (log::debug_enabled())
    log::debug("flatten: " + std::to_string(bottom_up.size()) + " snapshots (" + std::to_string(merged) +
               " layers merged) in " +
               std::to_string(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()) +
               " ms");
  return {};
}

namespace {
std::mutex g_registry_mu;
std::map<std::string, std::weak_ptr<Flattener>> g_registry;
}  // namespace

std::shared_ptr<Flattener> attach(const store::Store& st, const IdMapping& ids) {
  std::lock_guard lk(g_registry_mu);
  auto& slot = g_registry[st.root()];
  if (auto p = slot.lock()) return p;
  auto p = std::make_shared<Flattener>(st, ids, Policy::for_store(st.root()));
  slot = p;
  return p;
}

std::vector<std::string> lowers(const store::Store& st, const std::vector<std::string>& chain) {
  std::shared_ptr<Flattener> f;
  {
    std::lock_guard lk(g_registry_mu);
    if (auto it = g_registry.find(st.root()); it != g_registry.end()) f = it->second.lock();
  }
  if (f) return f->lowers(chain);
  std::vector<std::string> out;
  for (const auto& id : chain) out.push_back(st.snapshot_path(id));
  return out;
}

}  // namespace ocib::solver::flatten
