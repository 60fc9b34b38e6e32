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

/// kNone: a network namespace of its own with only lo. kHost: the caller's network namespace.
/// kDefault (BuildKit's default): a network namespace apart from the host's with outbound access
/// through a user-mode network stack (slirp4netns), one namespace and one stack per process and
/// id mapping shared by every kDefault step, as rootless BuildKit's steps share RootlessKit's;
/// the host's loopback is not reachable from it. Without slirp4netns on PATH, kDefault runs as kHost (see
/// network_stack_unavailable(); the caller says so).
enum class Network { kNone, kHost, kDefault };

/// How a step's root (and read-only views, and RUN --mount=type=bind,rw) are assembled from
/// snapshot directories. Every driver leaves `Spec::upperdir` in kernel overlay format
/// (whiteouts as char devices 0:0, opaque directories as user.overlay.opaque=y), so snapshots of
/// any driver stack under any other and pack into the same layer.
enum class Snapshotter {
  kAuto,           // the process's choice: snapshot_driver()
  kOverlay,        // kernel overlayfs mounted in the user namespace (userxattr)
  kFuseOverlayfs,  // fuse-overlayfs started inside the user + mount namespace, upperdir normalised
  kCopy,           // the merged lowers copied into a fresh root; afterwards diffed into upperdir
};

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
    kData,       // a file holding `data` (mode `mode`, owned by container root) in a tmpfs that
                 // only the step's mount namespace has: nothing reaches the disk (secrets)
  };
  Type type = Type::kBind;
  std::string source;  // host path for kBind
  /// kBind and kOverlayRw: mount this path *inside* `source` (or the overlay), resolved as if
  /// it were "/" (openat2 RESOLVE_IN_ROOT): symlinks in it cannot leave it. Empty = its root.
  /// Whether the target is a file or a directory follows what it resolves to.
  std::string subpath;
  std::string data;  // kData only
  /// kData: the file's owner (container ids; -1 = root). kBind of a directory: chown the source
  /// to these container ids before mounting it (a new cache directory), -1 = leave it.
  int64_t chown_uid = -1, chown_gid = -1;
  std::string target;  // absolute container path; missing components are created (see run())
  bool readonly = false;
  uint64_t tmpfs_size = 0;
  uint32_t mode = 0755;  // tmpfs root mode; kData file mode
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
  /// then the `pass_fds` as they are, in that order. It runs in a forked child: it may
  /// allocate, must not touch parent threads.
  std::function<int(const std::vector<int>& fds)> in_sandbox;
  std::vector<ReadOnlyView> views;
  /// Host directories opened (O_PATH|O_DIRECTORY) before entering the namespaces (the build
  /// context for COPY).
  std::vector<std::string> host_dirs;
  /// The caller's descriptors handed to `in_sandbox` (a pipe it reads a layer from); the
  /// caller keeps and closes them.
  std::vector<int> pass_fds;

  std::vector<std::string> env;  // "K=V"
  std::string cwd = "/";         // created (mkdir -p, owned by uid:gid) if missing
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups (ignored under a single-id map)
  std::string hostname = "buildkitsandbox";  // BuildKit's default
  Network network = Network::kNone;
  /// --add-host: extra /etc/hosts lines (host, address), after the generated ones.
  std::vector<std::pair<std::string, std::string>> extra_hosts;
  /// --shm-size: the size of /dev/shm in bytes (0: 64 MiB, Docker's default).
  uint64_t shm_size = 0;
  /// --ulimit: resource limits set before the command starts (RLIMIT_*; -1 = unlimited).
  struct Ulimit {
    int resource = 0;
    int64_t soft = -1, hard = -1;
  };
  std::vector<Ulimit> ulimits;

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
  /// and /etc/resolv.conf (the host's for kHost, the stack's resolver 10.0.2.3 for kDefault, an
  /// empty one for kNone) from scratch over the
  /// image's, writable, so that whatever the step writes to them is discarded with it and the
  /// layer keeps the image's files (BuildKit semantics).
  bool etc_files = true;

  /// stdin is /dev/null; stdout and stderr of the step are written to this fd (e.g. a pipe the
  /// caller reads for progress). -1 = inherit the caller's stderr.
  int output_fd = -1;

  /// RUN --security=insecure (granted with --allow security.insecure): root in the step keeps
  /// every capability (of its user namespace), no seccomp filter, no no_new_privs. The user
  /// namespace, the other namespaces and the overlay root stay.
  bool insecure = false;

  /// The snapshot driver for this step (probes use a given one; builds leave kAuto).
  Snapshotter snapshotter = Snapshotter::kAuto;
};

struct Outcome {
  int exit_code = 0;  // the command's exit status; 128+N when killed by signal N
  int signal = 0;     // the signal that killed it, 0 if it exited
};

/// Runs one step. Returns an Outcome for any command that started (even exit != 0); an Error
/// only when the sandbox itself could not be set up, naming the setup step and errno
/// ("sandbox: mount overlay on /…/scratch/root: Invalid argument", "sandbox: mount
/// /run/secrets/x: Not a directory", "sandbox: mount fuse-overlayfs (fuse: device not
/// found…): Input/output error"). Under the fuse-overlayfs and copy drivers the upperdir is
/// brought to kernel overlay format before run() returns. Nothing stays mounted on the host
/// afterwards: all mounts live in the step's own mount namespace. Safe to call from several threads
/// at once. Removes the mountpoint stubs
/// (/proc, /dev, /sys, /etc/hosts, mount targets and the parent directories created for them)
/// that it had to create in `upperdir` when they did not exist in any lowerdir and are still
/// empty, and the parent directories that existed below but were only copied up to hold such a
/// stub (empty, not opaque, same mode and owner), so they never land in a layer. A secret bound
/// at /run/secrets/ID leaves nothing in upperdir, also when /run is a symlink in the image: pid 1
/// reports each stub at the path it resolved to, and they are removed beneath an upperdir fd
/// without following symlinks (a step cannot point the cleanup at the host). The working
/// directory is created after pivot_root, so symlinks in it resolve inside the root; /proc,
/// /dev and /sys must be directories (not symlinks) in the image.
/// The step runs in a session of its own, with no controlling terminal: opening /dev/tty fails
/// (ENXIO) and TIOCSTI on an inherited terminal fd is refused, so it cannot type into the caller's.
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

/// The snapshot driver this process uses and why.
struct SnapshotDriver {
  Snapshotter driver = Snapshotter::kOverlay;
  std::string name;  // "overlay", "fuse-overlayfs", "copy"
  /// "kernel overlayfs works in a user namespace here", "set by OCIB_SNAPSHOTTER", or why
  /// kernel overlayfs (and fuse-overlayfs) could not be used.
  std::string reason;
  bool fallback = false;  // chosen because kernel overlayfs does not work here
};

struct ProbeOptions {
  /// Where a passing kernel overlay probe is remembered ("overlay"): later processes skip the
  /// probe. Empty: not remembered. Fallbacks are probed again by every process, so installing
  /// fuse-overlayfs or a kernel upgrade is picked up.
  std::string cache_file;
  /// Directory for the probe's temp dir (the store's, so the probe tests its filesystem); its
  /// name starts with "<pid>-". Empty: $TMPDIR or /tmp.
  std::string dir;
};

/// Chooses the driver once per process: OCIB_SNAPSHOTTER=overlay|fuse-overlayfs|copy if set
/// (after a probe step that must pass; "auto" or empty: as unset);
/// else kernel overlay when a probe step (delete a lower file, replace a lower directory) works
/// in the user namespace; else fuse-overlayfs when the binary is on PATH, /dev/fuse is usable and
/// the same probe passes; else copy. Later calls return the first result (options ignored). An
/// error means no driver works (e.g. user namespaces are disabled).
Result<SnapshotDriver> snapshot_driver(const IdMapping& ids, const ProbeOptions& opts = {});

/// snapshot_driver(ids)'s name, or "unavailable".
std::string snapshot_driver_name(const IdMapping& ids);

/// Why fuse-overlayfs cannot be used here ("" when it can: on PATH and /dev/fuse read-write).
std::string fuse_overlayfs_unavailable();

/// How steps get their /proc, chosen once per process: a fresh procfs of the step's pid namespace
/// (full isolation), or, where the kernel refuses one in a user namespace because the outer
/// /proc is partly hidden (a container's masked /proc/kcore, /proc/keys, read-only /proc/sys),
/// the outer /proc bound recursively (its masks kept, ours added): steps then see the outer pid
/// namespace's processes (BuildKit's --oci-worker-no-process-sandbox trade-off). Probed by a
/// child that tries the fresh mount; OCIB_ISOLATION=full forces the fresh one (steps fail where
/// it is refused), OCIB_ISOLATION=procfs-less the outer one; "auto" or unset: probe.
///
/// Below both, where this process may create no namespace at all (unshare(CLONE_NEWUSER) is
/// refused: Docker's default seccomp profile, an LSM, or user namespaces disabled), the *chroot*
/// rung (OCIB_ISOLATION=chroot forces it): every step's root is a copy of its snapshots, RUN runs
/// there under proot as the caller's own user (root's ids are real; as non-root only the caller's
/// id exists), with the container's processes, network, /dev and /proc; layers are diffed as by
/// the copy driver. Chosen only when proot is on PATH.
struct ProcIsolation {
  bool fresh = true;
  bool namespaces = true;  // false: the chroot rung
  std::string name;    // "full", "procfs-less" or "chroot"
  std::string reason;  // why (probe result or the environment variable)
  bool fallback = false;  // chosen because a fresh /proc is refused here: warn the user once
};
Result<ProcIsolation> proc_isolation();

/// The id mapping steps run with: IdMapping::detect(), except under the chroot isolation, where
/// no user namespace exists and an unprivileged caller has only its own ids (single()).
IdMapping id_mapping();

/// The user-mode network stack kDefault steps use: its path on PATH, "" when missing.
std::string network_stack_path();

/// Why kDefault steps cannot get their own network here ("" when they can): slirp4netns not on
/// PATH (naming the package to install) or /dev/net/tun not openable read-write; such steps
/// then use the host's network (in their user namespace).
std::string network_stack_unavailable();

/// Starts this process's shared default network (the user + network namespace pair and its
/// slirp4netns, 50-120 ms) now, so the first kDefault step does not wait for it; a no-op when
/// it exists or when network_stack_unavailable(). For a caller that knows such a step will run.
void prepare_default_network(const IdMapping& ids);

/// Checks once per process that user namespaces and a snapshot driver work here (that is,
/// snapshot_driver(ids) succeeds); the error explains what is missing (e.g. "unprivileged user
/// namespaces are disabled: kernel.unprivileged_userns_clone=0").
Status check_support(const IdMapping& ids);

}  // namespace ocib::sandbox
