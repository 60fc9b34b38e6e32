#pragma once
// The RUN sandbox: user, mount, pid, ipc, uts (and by default net) namespaces, an overlayfs
// root from snapshot directories, pivot_root, fresh /proc, minimal /dev, dropped capabilities,
// no_new_privs and a seccomp filter. Knows nothing of images: it takes a plain Spec.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/idmap.h"

namespace ocib::sandbox {

enum class Network { kNone, kHost };

/// A read-only view of a stack of snapshot directories, mounted in the sandbox's mount
/// namespace before pivot_root and handed to `in_sandbox` as an O_PATH directory fd
/// (used by COPY --from=stage to read another stage's merged filesystem).
struct ReadOnlyView {
  std::vector<std::string> layers;  // topmost first; empty = an empty directory
};

/// A filesystem mounted into the step's root after the rootfs overlay and before pivot_root
/// (RUN --mount, secrets, the generated /etc files). Mounts apply in order, so a later mount
/// may sit inside an earlier one.
struct Mount {
  enum class Type {
    kBind,       // `source` (host file or directory, recursive) at `target`
    kTmpfs,      // an empty tmpfs of `tmpfs_size` bytes (0 = kernel default) and `mode`
    kOverlayRw,  // `lowerdirs` (topmost first) under a throwaway upperdir in scratch: writable,
                 // and every change is discarded with the step (RUN --mount=type=bind,rw)
  };
  Type type = Type::kBind;
  std::string source;  // host path for kBind
  std::string target;  // absolute container path; missing components are created (see run())
  bool readonly = false;
  uint64_t tmpfs_size = 0;
  uint32_t mode = 0755;  // tmpfs root mode
  std::vector<std::string> lowerdirs;  // kOverlayRw only
};

struct Spec {
  /// Parent snapshot directories (overlay upperdirs of earlier steps), topmost first. May be
  /// empty (FROM scratch).
  std::vector<std::string> lowerdirs;
  /// A fresh, empty directory that becomes the overlay upperdir; what the step writes lands here.
  std::string upperdir;
  /// Scratch directory on the same filesystem as upperdir (overlay workdir, mountpoints); the
  /// sandbox creates what it needs beneath it; the caller removes it afterwards.
  std::string scratch;

  /// What to run: argv[0] is resolved against PATH from `env` inside the container when it
  /// has no '/'. Exactly one of argv / in_sandbox is used (in_sandbox when set).
  std::vector<std::string> argv;
  /// Runs inside the sandbox after pivot_root and privilege drop, in place of exec; its return
  /// value is the exit code. Receives one O_PATH fd per `views` entry and per `host_dirs` entry,
  /// in that order. It runs in a forked child: it may allocate, must not touch parent threads.
  std::function<int(const std::vector<int>& fds)> in_sandbox;
  std::vector<ReadOnlyView> views;
  /// Host directories opened (O_PATH|O_DIRECTORY) before entering the namespaces (the build
  /// context for COPY).
  std::vector<std::string> host_dirs;

  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";         // created (mkdir -p, owned by uid:gid) if missing
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups (ignored under a single-id map)
  std::string hostname = "ocib";
  Network network = Network::kNone;

  /// Mounted in order after the rootfs and the generated /etc files (so a mount may replace
  /// /etc/resolv.conf). Targets resolve inside the new root (symlinks cannot escape it).
  std::vector<Mount> mounts;
  /// kNone only: join a per-process (per IdMapping) user + network namespace pair created once
  /// (loopback only, like a fresh one) instead of creating and tearing down a network (and
  /// user) namespace per step; no newuidmap/newgidmap per step either. Measured (100 x `true`,
  /// median, quiet 2-core machine): unprivileged 18 -> 10 ms, root 11.6 -> 9.5 ms. Opt-in
  /// because concurrent steps that share it share one loopback (and the abstract unix
  /// sockets), so they could talk to each other; the host stays unreachable either way.
  bool shared_netns = false;
  /// For argv steps (RUN; not for in_sandbox steps, which see the image's own files): bind
  /// generated /etc/hosts ("127.0.0.1 localhost <hostname>", "::1 localhost"), /etc/hostname
  /// and /etc/resolv.conf (the host's for kHost, an empty one for kNone) from scratch over the
  /// image's, writable, so that whatever the step writes to them is discarded with it and the
  /// layer keeps the image's files (BuildKit semantics).
  bool etc_files = true;

  /// stdin is /dev/null; stdout and stderr of the step are written to this fd (e.g. a pipe the
  /// caller reads for progress). -1 = inherit the caller's stderr.
  int output_fd = -1;
};

struct Outcome {
  int exit_code = 0;  // the command's exit status; 128+N when killed by signal N
  int signal = 0;     // the signal that killed it, 0 if it exited
};

/// Runs one step. Returns an Outcome for any command that started (even exit != 0); an Error
/// only when the sandbox itself could not be set up, naming the setup step and errno
/// ("sandbox: mount overlay: Invalid argument", "sandbox: mount /run/secrets/x: Not a
/// directory"). Nothing stays mounted on the host afterwards: all mounts live in the step's own
/// mount namespace. Safe to call from several threads at once. Removes the mountpoint stubs
/// (/proc, /dev, /sys, /etc/hosts, mount targets and the parent directories created for them)
/// that it had to create in `upperdir` when they did not exist in any lowerdir and are still
/// empty, and the parent directories that existed below but were only copied up to hold such a
/// stub (empty, not opaque, same mode and owner), so they never land in a layer. A secret bound
/// at /run/secrets/ID leaves nothing in upperdir. (Not covered: a target reached through a
/// symlink in the image, e.g. /var/run -> /run, leaves its stubs at the resolved path.)
///
/// Lifetime: every process of the step dies when the calling *thread* dies (PR_SET_PDEATHSIG on
/// both sandbox children, re-armed after the uid switch, and pid 1's death kills the whole pid
/// namespace). So a SIGKILLed ocib leaves no process and no mount behind, but run() must be
/// called from a thread that outlives the step (the build's long-lived workers are fine; a
/// short-lived std::thread that returns early is not).
Result<Outcome> run(const Spec& spec, const IdMapping& ids);

/// Cancels all running steps (SIGKILL to their process groups); used when a sibling vertex
/// fails or on SIGINT. Later calls to run() fail with Errc::kCancelled.
void cancel_all();

/// Removes a directory tree that may hold files owned by subordinate ids (which an unprivileged
/// caller cannot delete itself): first directly, then from inside a user namespace with `ids`
/// as the container's root. A missing path is fine.
Status remove_tree(const std::string& path, const IdMapping& ids);

/// The snapshot driver this process uses for RUN roots, for `ocib info`: "overlayfs" when the
/// kernel overlay works in a user namespace (check_support), else "fuse-overlayfs" when that
/// binary is on PATH, else "copy". OCIB_SNAPSHOTTER=overlayfs|fuse-overlayfs|copy overrides the
/// probe (tests). Only "overlayfs" is implemented by run() so far: the name lets the caller
/// report what would be needed.
std::string snapshot_driver_name(const IdMapping& ids);

/// Checks once per process that user namespaces + overlayfs work here; the error explains what
/// is missing (e.g. "unprivileged user namespaces are disabled: kernel.unprivileged_userns_clone=0").
Status check_support(const IdMapping& ids);

}  // namespace ocib::sandbox
