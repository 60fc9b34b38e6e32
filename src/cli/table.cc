// The table: every command and flag of ocib, the single source of the parser, --help, the man
// pages' OPTIONS sections and the completions (see table.h). A new flag is one entry here plus
// its handler in main.cc; then run scripts/generate-cli.sh.

#include "cli/table.h"

namespace ocib::cli {
namespace {

Flag sw(std::string name, char s, std::string help) {
  Flag f;
  f.name = std::move(name);
  f.short_name = s;
  f.help = std::move(help);
  return f;
}

Flag val(std::string name, char s, std::string value, std::string help) {
  Flag f = sw(std::move(name), s, std::move(help));
  f.arg = Arg::kValue;
  f.value = std::move(value);
  return f;
}

Flag repeatable(Flag f) {
  f.repeatable = true;
  return f;
}

Flag file(Flag f) {
  f.complete = Complete::kFile;
  return f;
}

Flag choice(Flag f, std::vector<std::string> choices) {
  f.choices = std::move(choices);
  f.complete = Complete::kChoices;
  return f;
}

Flag offer(Flag f, std::vector<std::string> completions) {
  f.completions = std::move(completions);
  return f;
}

Flag man(Flag f, std::string text) {
  f.man = std::move(text);
  return f;
}

Flag config(Flag f, std::string key) {
  f.config_key = std::move(key);
  return f;
}

Flag insecure_registry() {
  return repeatable(val("insecure-registry", 0, "HOST[:PORT]",
                        "allow plain HTTP / unverified TLS for this registry only"));
}

// Shared by build and bake.
Flag progress_flag() {
  return config(choice(val("progress", 0, "MODE",
                           "auto (default: tty on a terminal, else plain) | tty | plain |\nrawjson | quiet"),
                       {"auto", "tty", "plain", "rawjson", "quiet"}),
                "build.progress");
}

Flag pull_flag() {
  Flag f = choice(sw("pull", 0,
                     "base images from registries: always | missing | never\n"
                     "(default: re-resolve the tag with a HEAD, pull if it moved)"),
                  {"always", "missing", "never", "true", "false"});
  f.arg = Arg::kOptional;
  f.value = "POLICY";
  f.implicit = "always";
  return f;
}

Flag jobs_flag() {
  Flag f = config(val("jobs", 'j', "N", "run at most N steps at once (default: max(4, CPUs))"), "build.jobs");
  f.positive_int = true;
  return f;
}

Flag allow_flag() {
  Flag f = man(choice(repeatable(val("allow", 0, "ENTITLEMENT",
                                 "security.insecure: let RUN --security=insecure run with every\n"
                                 "capability of its user namespace and no seccomp filter;\n"
                                 "network.host: let RUN use the host's network (--network=host)")),
                  {"security.insecure", "network.host"}),
               "An entitlement (a comma list, or repeated). *network.host*: let *RUN* steps use the\n"
               "host's network (*--network=host*, *RUN --network=host*); without it they still do,\n"
               "with a warning. *security.insecure*: let *RUN --security=insecure* steps run. Such a\n"
               "step keeps every capability of its user namespace and runs without the seccomp filter\n"
               "and without no_new_privs; it is still rootless and in its own namespaces. Without the\n"
               "entitlement such a step is an error that names its line.");
  f.list = true;
  return f;
}

Flag call_flag() {
  return man(choice(val("call", 0, "WHAT", "build (the default) | check: the same as --check"), {"build", "check"}),
             "What to run, as buildx's *--call*: *build* (the default), or *check*, the same as *--check*.");
}

std::vector<Command> make_table() {
  std::vector<Command> t;

  // ---- build --------------------------------------------------------------------------
  {
    Command c;
    c.name = "build";
    c.summary = "Build an image from a Dockerfile";
    c.usage = "[OPTIONS] CONTEXT";
    c.description =
        "Build an image from a Dockerfile, without a daemon and without root. CONTEXT is a\n"
        "directory, or - to read it from stdin (a tar archive, or a Dockerfile with no context).";
    c.positional = "dir";
    c.min_args = c.max_args = 1;
    c.flags = {
        man(file(val("file", 'f', "FILE", "Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)")),
            "The Dockerfile. Default: _CONTEXT/Dockerfile_ (else _CONTEXT/dockerfile_). *-f -*\n"
            "reads it from stdin. A _CONTEXT_ of *-* reads the context from stdin instead: a tar\n"
            "archive (its names kept beneath the context), or a Dockerfile with no context."),
        man(repeatable(val("tag", 't', "NAME[:TAG]", "name the image (repeatable)")),
            "Name the image; repeatable. The first name is recorded in the output's\n"
            "_index.json_: its tag (default *latest*) as the\n"
            "*org.opencontainers.image.ref.name* annotation and _NAME:TAG_ as\n"
            "*io.containerd.image.name*."),
        val("target", 0, "STAGE", "build this stage (default: the last)"),
        man(repeatable(val("label", 0, "K=V", "set a label on the image (repeatable)")),
            "Set a label on the image's config (repeatable); it wins over a *LABEL* of the\n"
            "same key in the Dockerfile."),
        man(repeatable(val("build-context", 0, "NAME=DIR|docker-image://REF|oci-layout://DIR[:TAG]",
                           "an extra context for FROM NAME / COPY --from=NAME /\n"
                           "RUN --mount=from=NAME; it replaces a stage of that name")),
            "An additional named context, as in buildx: a local directory (for\n"
            "*COPY --from=*_NAME_ and *RUN --mount=type=bind,from=*_NAME_), *docker-image://*_REF_\n"
            "or *oci-layout://*_DIR_[*:*_TAG_][*@*_DIGEST_] (for *FROM* _NAME_ and *COPY --from=*_NAME_).\n"
            "A named context replaces a stage of the same name. Directory contexts ignore\n"
            "_.dockerignore_. Repeatable."),
        man(repeatable(val("build-arg", 0, "K=V", "set a build-time variable (repeatable)")),
            "Set the value of an *ARG*; repeatable. With *--build-arg* _KEY_ alone the value\n"
            "is taken from the environment variable _KEY_ (and the option is ignored if it is\n"
            "unset). *SOURCE_DATE_EPOCH=*_N_ clamps the image's times to _N_;\n"
            "*BUILDKIT_SANDBOX_HOSTNAME=*_NAME_ is the hostname of *RUN* steps."),
        man(offer(val("platform", 0, "LIST",
                      "build for these platforms (linux/amd64,linux/arm64,...); several\n"
                      "make an image index. RUN for a foreign architecture needs qemu-user\n"
                      "registered in binfmt_misc (F flag) (default: the host's)"),
                  {"linux/amd64", "linux/arm64", "linux/amd64,linux/arm64"}),
            "Build for these platforms (comma-separated _OS_/_ARCH_[/_VARIANT_], e.g.\n"
            "*linux/amd64,linux/arm64*; default: the host's). Each platform is its own build, with\n"
            "*TARGETPLATFORM*, *TARGETOS*, *TARGETARCH* and *TARGETVARIANT* set to it (*BUILD*\\*\n"
            "are the host's). With several platforms, OCI outputs, *type=image*/*registry* and the\n"
            "store tag hold an image index listing each image with its platform; *type=local* and\n"
            "*type=tar* write one directory per platform (_linux_arm64/_); *type=docker* is refused.\n"
            "A *RUN* for a foreign architecture executes through qemu-user registered in\n"
            "binfmt_misc with the *F* (fix-binary) flag, e.g. by the qemu-user-static package; if\n"
            "none is registered the step fails with instructions. Stages written\n"
            "*FROM --platform=$BUILDPLATFORM* run natively and can cross-compile for *TARGETARCH*."),
        man(offer(repeatable(val("output", 'o', "SPEC",
                                 "type=image,name=REF[,push=true] | type=registry,name=REF |\n"
                                 "type=oci,dest=FILE.tar | type=oci-layout,dest=DIR |\n"
                                 "type=docker,dest=FILE.tar | type=local,dest=DIR | type=tar,dest=FILE\n"
                                 "(repeatable; dest=- writes tar outputs to stdout); options:\n"
                                 "compression=gzip|zstd|uncompressed, compression-level=N")),
                  {"type=oci,dest=", "type=oci-layout,dest=", "type=docker,dest=", "type=local,dest=",
                   "type=tar,dest=", "type=image,name=", "type=registry,name="}),
            "Where to write the image; repeatable. _SPEC_ is a comma-separated list of\n"
            "_key_=_value_ pairs, as in *docker buildx* (a field in double quotes may hold commas:\n"
            "*\"name=a,b\"*):\n"
            "\n"
            "*type=oci,dest=*_FILE.tar_\n"
            "\tAn oci-archive tarball (read it with *skopeo inspect oci-archive:*_FILE.tar_).\n"
            "\n"
            "*type=oci-layout,dest=*_DIR_\n"
            "\tAn OCI image layout directory, created or added to.\n"
            "\n"
            "*type=docker*[*,dest=*_FILE.tar_]\n"
            "\tA docker-archive (for *docker load*, *podman load*); without *dest*, loaded\n"
            "\tinto the docker daemon or podman (see *--load*). One platform only.\n"
            "\n"
            "*type=local,dest=*_DIR_, *type=tar,dest=*_FILE_\n"
            "\tThe final filesystem as a directory, or as a tar archive (*dest=-*: standard\n"
            "\toutput).\n"
            "\n"
            "*type=image,name=*_REF_[,_REF_...][*,push=true*], *type=registry,name=*_REF_\n"
            "\tThe image under those names; *push=true* (always for *registry*) pushes it.\n"
            "\t*push-by-digest=true* pushes without a tag (the digest is in *--metadata-file*),\n"
            "\t*name-canonical=true* adds _REF_@_DIGEST_.\n"
            "\n"
            "The image types (all but *local* and *tar*) take *compression=gzip|zstd|uncompressed*,\n"
            "*compression-level=*_N_ and *annotation.*_KEY_*=*_VALUE_ (also *annotation-*_TYPE_*.*_KEY_)\n"
            "as buildx. An unknown type or key is a usage error naming the closest one."),
        man(repeatable(val("annotation", 0, "A",
                           "[TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE on the manifest (default),\n"
                           "index, manifest-descriptor or index-descriptor (repeatable)")),
            "An annotation, as buildx writes it: on the image *manifest* (the default), the\n"
            "*index* (several platforms), the *manifest-descriptor* or the *index-descriptor*;\n"
            "*[linux/arm64]* limits it to that platform. Repeatable."),
        man(repeatable(val("ulimit", 0, "NAME=S[:H]", "resource limit for RUN steps, e.g. nofile=1024:2048 (repeatable)")),
            "A resource limit for every *RUN* step (*nofile*, *nproc*, ...; -1 is unlimited);\n"
            "part of the step's cache key, as in BuildKit. Repeatable."),
        man(config(choice(val("isolation", 0, "MODE", "auto | full | procfs-less | chroot (= OCIB_ISOLATION; see ocib info)"),
                          {"auto", "full", "procfs-less", "chroot"}),
                   "sandbox.isolation"),
            "*auto* (default), *full*, *procfs-less* or *chroot*: the isolation rung, as\n"
            "*OCIB_ISOLATION* (see *ocib info*)."),
        man(repeatable(val("add-host", 0, "HOST:IP", "an /etc/hosts entry for every RUN (repeatable)")),
            "An extra _/etc/hosts_ line for every *RUN* step; part of the step's cache key."),
        man(val("shm-size", 0, "SIZE", "size of /dev/shm in RUN steps (default 64m)"),
            "The size of _/dev/shm_ in *RUN* steps (default 64m; units b, k, m, g); part of the\n"
            "step's cache key."),
        sw("check", 0, "lint instead of building (buildx --call=check): exit 1 on warnings"),
        call_flag(),
        man(sw("push", 0, "push the image to the -t names (= -o type=registry)"),
            "Push the image to every *-t* name (the same as *-o type=registry*). As buildx, a\n"
            "push gets a *mode=min* provenance attestation unless *--provenance=false* or\n"
            "*BUILDX_NO_DEFAULT_ATTESTATIONS* is set."),
        file(val("iidfile", 0, "FILE",
                 "write the image ID (config digest; index digest for several\n"
                 "platforms); -q prints the same ID")),
        man(choice(val("print", 0, "WHAT",
                       "do not build; print the stage graph (graph: DOT, graph-json),\n"
                       "lint warnings (lint: stages serialised for no reason; with\n"
                       "--fix the Dockerfile is rewritten to the parallel shape) or the\n"
                       "planned steps with their cache keys (plan: JSON; nothing runs)"),
                   {"graph", "graph-json", "lint", "plan"}),
            "Do not build. *graph* (DOT) or *graph-json*: the stage graph with estimated\n"
            "durations and the critical path. *lint*: stages serialised for no reason (a stage\n"
            "FROM a sibling whose files its RUN steps never reach; *COPY --from* of what the\n"
            "sibling's parent produced), with the time it costs. *plan*: the planned steps and\n"
            "their cache keys, as JSON."),
        sw("fix", 0, "with --print=lint: rewrite the Dockerfile into the parallel shape"),
        man(repeatable(val("secret", 0, "SPEC", "id=ID,src=FILE | id=ID,env=VAR: for RUN --mount=type=secret")),
            "A secret for *RUN --mount=type=secret,id=*_ID_: *id=*_ID_*,src=*_FILE_ or\n"
            "*id=*_ID_*,env=*_VAR_ (*id=*_ID_ alone: the variable _ID_). Never part of a layer, a\n"
            "cache key, the history or the log. Repeatable."),
        man(offer(val("provenance", 0, "V",
                      "true|false|mode=min|max: a SLSA provenance attestation (default for --push: mode=min)"),
                  {"true", "false", "mode=min", "mode=max"}),
            "A SLSA v0.2 provenance attestation (*true*, *false*, *mode=min*, *mode=max*; build\n"
            "args only with *mode=max*), as BuildKit attaches it: the result becomes an image\n"
            "index holding, per platform, an attestation manifest (platform unknown/unknown,\n"
            "annotated *vnd.docker.reference.type=attestation-manifest*) whose layers are\n"
            "in-toto statements naming the image manifest as subject."),
        man(offer(val("sbom", 0, "V", "true|false: an SPDX SBOM attestation of the image's packages"),
                  {"true", "false"}),
            "*true*: an SPDX 2.3 SBOM attestation of the final filesystem's packages, attached as\n"
            "*--provenance* is: dpkg (status and distroless status.d), apk, rpm (rpmdb.sqlite; the\n"
            "BerkeleyDB and ndb formats are noted as unsupported), the modules in Go binaries'\n"
            "build info, installed npm packages (node_modules/**/package.json; a package-lock.json\n"
            "only where no node_modules sits beside it) and Python distributions (*.dist-info*,\n"
            "*.egg-info* under site-packages or dist-packages), scanned in a sandbox over a\n"
            "read-only view of the image."),
        man(offer(repeatable(val("attest", 0, "SPEC", "type=provenance[,mode=max] | type=sbom")),
                  {"type=provenance", "type=provenance,mode=max", "type=sbom"}),
            "An attestation as buildx's *--attest*: *type=provenance*[*,mode=max*] is *--provenance*,\n"
            "*type=sbom* is *--sbom=true*. Repeatable."),
        man(sw("load", 0, "load the image into the docker daemon (DOCKER_HOST or /var/run/docker.sock), else podman"),
            "Load the image (one platform) into the docker daemon, through its API at\n"
            "*DOCKER_HOST* (unix:// or tcp:// without TLS) or _/var/run/docker.sock_; without a\n"
            "daemon, into podman (*podman load*). The same as *-o type=docker* without *dest*.\n"
            "Checked before the build: with neither, ocib fails at once."),
        man(repeatable(val("ssh", 0, "default|ID[=SOCKET|KEY[,KEY]]",
                           "an ssh agent (or key files) for RUN --mount=type=ssh")),
            "An ssh agent for *RUN --mount=type=ssh[,id=*_ID_*]*: its socket is bound at the\n"
            "mount's target (default _/run/buildkit/ssh_agent.N_) and *SSH_AUTH_SOCK* names the\n"
            "first one. Without _SOCKET_ the agent at *$SSH_AUTH_SOCK*. Never part of a layer or a\n"
            "cache key. Private key files are loaded into an *ssh-agent* ocib starts for the build and\n"
            "stops after it; a passphrase-protected key is refused (add it to your agent with *ssh-add*).\n"
            "Repeatable."),
        pull_flag(),
        config(insecure_registry(), "registry.\"HOST\".insecure"),
        config(repeatable(val("registry-mirror", 0, "HOST=MIRROR",
                              "try MIRROR (host[:port]) first for images of HOST (repeatable)")),
               "registry.\"HOST\".mirrors"),
        man(progress_flag(),
            "*auto* (the default): *tty* on a terminal, else *plain*. *plain*: a BuildKit-style\n"
            "log on standard error, *#N [stage i/n] INSTRUCTION*, then the step's output, then\n"
            "*#N DONE 0.1s* or *#N CACHED*. *tty*: a live view of the running steps. *rawjson*:\n"
            "one JSON event per line. *quiet*: no log; the image ID is printed on standard output\n"
            "when the build succeeds."),
        man(file(val("metadata-file", 0, "FILE", "write the image digest and per-step timings as JSON")),
            "Write JSON describing the build to _FILE_: *containerimage.digest*,\n"
            "*containerimage.config.digest*, *image.name* and *ocib.vertices* (for each step:\n"
            "name, stage, cached, started, completed). With several *--platform*s the digest is\n"
            "the image index's and *ocib.platforms* maps each platform to its manifest and config\n"
            "digests. *ocib.critical_path* lists the ids of the steps on the critical path, first\n"
            "step first (each platform's in turn)."),
        man(file(val("timeline", 0, "FILE",
                     "write an HTML page of the build's steps over time (lanes of\n"
                     "concurrent steps, cached steps, the critical path); self-contained")),
            "Write an HTML page of the build's steps over time to _FILE_ when the build succeeds:\n"
            "one lane per concurrently running step, cached steps hatched, the critical path\n"
            "highlighted, a tooltip per step with its stage and duration. The page is\n"
            "self-contained (inline SVG, nothing fetched) and is the one *ocib timeline* draws\n"
            "from the *--metadata-file* of the same build; see *ocib-timeline*(1). The directory\n"
            "of _FILE_ must exist (checked before the build)."),
        jobs_flag(),
        sw("no-cache", 0, "do not use the build cache"),
        repeatable(val("no-cache-filter", 0, "STAGE[,STAGE]",
                       "run the steps of these stages again; others may be cached\n(repeatable)")),
        man(offer(repeatable(val("cache-to", 0, "SPEC",
                                 "export the build cache: type=local,dest=DIR |\n"
                                 "type=registry,ref=REF (an OCI artifact in a registry), with\n"
                                 "mode=min (the image's layers, default) or mode=max (every step);\n"
                                 "or type=inline (in the image config; read back from the image)")),
                  {"type=local,dest=", "type=registry,ref=", "type=inline"}),
            "Export the build cache: *type=local,dest=*_DIR_ (a directory), *type=registry,ref=*_REF_\n"
            "(an OCI artifact pushed to _REF_ whose config, of media type\n"
            "*application/vnd.ocib.cache.config.v1+json*, is the cache index and whose layers\n"
            "are the cached blobs; a bare _REF_ means this type) or *type=inline* (the cache index\n"
            "in the image's config under *ocib.cache.v0*; import it with *--cache-from\n"
            "type=registry,ref=* and the image's reference). *mode=min* (the default) exports the\n"
            "layers of the built image; *mode=max* every step of the build. *ignore-error=true*\n"
            "makes a failed export a warning."),
        man(offer(repeatable(val("cache-from", 0, "SPEC",
                                 "import a build cache: type=local,src=DIR | type=registry,ref=REF\n"
                                 "(a cache pushed with type=registry, or an image built with\n"
                                 "type=inline); a bare REF means type=registry,ref=REF (repeatable)")),
                  {"type=local,src=", "type=registry,ref="}),
            "Import a build cache: *type=local,src=*_DIR_, or *type=registry,ref=*_REF_ (a cache\n"
            "pushed with *--cache-to type=registry*, or an image built with *--cache-to\n"
            "type=inline*; a bare _REF_ means this type). A step whose cache key is in it is not\n"
            "run: its layer is fetched (from a registry only then) and verified. A cache that\n"
            "cannot be read (no such directory or tag, an unreachable registry) is a warning;\n"
            "a corrupt one is an error. Repeatable; earlier sources win."),
        man(config(choice(val("network", 0, "MODE",
                              "network of RUN steps: default (each step its own network\n"
                              "namespace with outbound access through slirp4netns; the\n"
                              "host's loopback unreachable) | none (only lo) | host"),
                          {"default", "none", "host"}),
                   "build.network"),
            "The network of *RUN* steps (and what *RUN --network=default* means). *default*\n"
            "(the default, as in BuildKit): steps run in a network namespace apart from the\n"
            "host's with outbound access through *slirp4netns*(1), one for the whole build and\n"
            "shared by its steps (*--disable-host-loopback*: the host's 127.0.0.1 is\n"
            "unreachable); its /etc/resolv.conf names slirp4netns' resolver 10.0.2.3. Without\n"
            "slirp4netns on *PATH*, or when /dev/net/tun cannot be opened read-write, a warning\n"
            "says so once and such steps use the host's network. *none*: a private network\n"
            "namespace with only the loopback interface. *host*: the host's network; wants\n"
            "*--allow network.host* (without it, a warning for now). Part of each RUN's cache key."),
        allow_flag(),
        sw("quiet", 'q', "same as --progress=quiet"),
    };
    c.examples =
        "ocib build -t app:1 -o type=oci,dest=app.tar .\n"
        "ocib build --target test --build-arg VERSION=2 -o type=oci-layout,dest=out/ .";
    t.push_back(std::move(c));
  }

  // ---- bake ---------------------------------------------------------------------------
  {
    Command c;
    c.name = "bake";
    c.summary = "Build several targets from a bake file";
    c.usage = "[OPTIONS] [TARGET|GROUP...]";
    c.description =
        "Build the targets of a bake file (docker-bake.json, docker-bake.hcl, compose.yaml) as\n"
        "docker buildx bake does, planned onto one store and run together. Without TARGET, the\n"
        "group \"default\".";
    c.flags = {
        repeatable(file(val("file", 'f', "FILE", "bake file (repeatable; default: buildx's lookup)"))),
        repeatable(val("set", 0, "TARGET.KEY=VALUE",
                       "override an attribute (TARGET may be a pattern: *.platform=linux/arm64;\n"
                       "args.NAME=V, labels.NAME=V, tags+=V appends; repeatable)")),
        sw("print", 0, "print the resolved definition as JSON; build nothing"),
        choice(val("list", 0, "WHAT", "list the targets and groups (targets); build nothing"), {"targets"}),
        sw("push", 0, "push every target's tags"),
        sw("load", 0, "load every target into the docker daemon, else podman"),
        sw("no-cache", 0, "do not use the build cache"),
        pull_flag(),
        progress_flag(),
        file(val("metadata-file", 0, "FILE", "write each target's digest and step timings as JSON")),
        file(val("timeline", 0, "FILE", "write an HTML page of every target's steps over time")),
        allow_flag(),
        offer(val("provenance", 0, "V", "true|false|mode=min|max: a SLSA provenance attestation"),
              {"true", "false", "mode=min", "mode=max"}),
        offer(val("sbom", 0, "V", "true|false: an SPDX SBOM attestation"), {"true", "false"}),
        call_flag(),
        sw("check", 0, "lint every target instead of building: exit 1 on warnings"),
        jobs_flag(),
        insecure_registry(),
    };
    c.examples = "ocib bake\nocib bake --set '*.platform=linux/amd64,linux/arm64' --push app";
    t.push_back(std::move(c));
  }

  // ---- the others ---------------------------------------------------------------------
  auto simple = [&](std::string name, std::string summary, std::string usage, std::string description, int min,
                    int max, std::vector<Flag> flags = {}, std::string examples = "", std::string positional = "") {
    Command c;
    c.name = std::move(name);
    c.summary = std::move(summary);
    c.usage = std::move(usage);
    c.description = std::move(description);
    c.min_args = min;
    c.max_args = max;
    c.flags = std::move(flags);
    c.examples = std::move(examples);
    c.positional = std::move(positional);
    t.push_back(std::move(c));
    return &t.back();
  };
  simple("images", "List the images in the local store", "", "List the images in the local store.", 0, 0);
  simple("import", "Import a rootfs tar or OCI archive as an image", "[--platform OS/ARCH] FILE NAME[:TAG]",
         "Import a root filesystem tar (plain, gzip or zstd) or an OCI archive\n"
         "into the local store as NAME, usable in FROM.",
         2, 2,
         {offer(val("platform", 0, "OS/ARCH",
                    "the rootfs's platform (default: the host's), e.g. an arm64 rootfs\n"
                    "for ocib build --platform linux/arm64"),
                {"linux/amd64", "linux/arm64"})},
         "ocib import rootfs.tar debian:bookworm\n"
         "ocib import --platform linux/arm64 rootfs-arm64.tar debian:bookworm-arm64",
         "file");
  simple("du", "Show the disk usage of the store", "", "Show the disk usage of the store.", 0, 0);
  simple("info", "Show the store, id mapping and sandbox support", "",
         "Show the version, the store, the configuration files read, the id mapping, the snapshot\n"
         "driver, the isolation rung and the sandbox's support on this machine.",
         0, 0);
  simple("inspect", "Print a stored image's manifest and config", "NAME",
         "Print a stored image's manifest and config as JSON.", 1, 1);
  simple("login", "Store registry credentials (Docker config file)", "[OPTIONS] REGISTRY",
         "Check the credentials against REGISTRY and store them in the Docker config file\n"
         "($DOCKER_CONFIG/config.json or ~/.docker/config.json).",
         1, 1,
         {val("username", 'u', "USER", "the user name"),
          val("password", 'p', "PASSWORD", "the password (visible to other users: prefer --password-stdin)"),
          sw("password-stdin", 0, "read the password from stdin"), insecure_registry()},
         "printf '%s' \"$TOKEN\" | ocib login -u ci --password-stdin registry.example.com");
  simple("logout", "Remove stored registry credentials", "REGISTRY",
         "Remove stored credentials for REGISTRY from the Docker config file.", 1, 1);
  {
    Command* m = simple("manifest", "Merge pushed images into one index, or inspect one (create, inspect)",
                        "create|inspect ...",
                        "create   Merge SOURCE manifests (single-platform images, or indexes whose entries are taken)\n"
                        "         into one image index and push it under every -t tag (docker buildx imagetools\n"
                        "         create). Sources in another repository of the same registry are mounted, not copied.\n"
                        "inspect  Show a manifest or index in a registry: its digest, media type and, for an index,\n"
                        "         each manifest with its platform. --raw prints the document as the registry serves it.",
                        0, -1, {},
                        "ocib build -o type=image,name=reg.example.com/app,push-by-digest=true --metadata-file m.json .\n"
                        "ocib manifest create -t reg.example.com/app:1.0 reg.example.com/app@sha256:... reg.example.com/app@sha256:...");
    m->subcommands = {"create", "inspect"};
    simple("manifest create", "Merge pushed images into one image index and push it",
           "-t REF [-t REF...] [--insecure-registry HOST] SOURCE...",
           "Merge SOURCE manifests (single-platform images, or indexes whose entries are taken)\n"
           "into one image index and push it under every -t tag (docker buildx imagetools create).",
           1, -1, {repeatable(val("tag", 't', "REF", "push the index under this name (repeatable; at least one)")),
                   insecure_registry()});
    simple("manifest inspect", "Show a manifest or index in a registry", "[--raw] [--insecure-registry HOST] REF",
           "Show a manifest or index in a registry: its digest, media type and, for an index,\n"
           "each manifest with its platform.",
           1, 1, {sw("raw", 0, "print the document as the registry serves it"), insecure_registry()});
  }
  simple("prune", "Remove build cache and unreferenced data", "[--all] [--filter until=DURATION]",
         "Remove build cache entries (all, or those older than DURATION: 30m, 24h, 7d) and every\n"
         "snapshot and blob nothing references any more. Waits for running builds on the same store.",
         0, 0,
         {sw("all", 'a', "also remove the tagged images"),
          sw("force", 'f', "accepted for buildx compatibility (ocib never prompts)"),
          offer(val("filter", 0, "until=DURATION", "only cache entries older than DURATION (30m, 24h, 7d)"),
                {"until="})},
         "ocib prune --filter until=24h");
  simple("pull", "Pull an image from a registry into the store", "[--insecure-registry HOST] REF",
         "Pull an image from a registry into the store.", 1, 1, {insecure_registry()},
         "ocib pull 127.0.0.1:5000/library/busybox:latest");
  simple("push", "Push a stored image to a registry", "[--insecure-registry HOST] NAME [DEST]",
         "Push a stored image to a registry (to DEST, or to NAME itself). Prints the pushed digest.", 1, 2,
         {insecure_registry()}, "ocib push app:1 registry.example.com/team/app:1");
  simple("rmi", "Remove image names from the store", "NAME...",
         "Remove image names from the store; 'ocib prune' reclaims their data.", 1, -1);
  {
    Command* s = simple("store", "Verify the store (ocib store check)", "check",
                        "check  Verify every blob's digest, every cache entry and every tagged image.\n"
                        "       Exit status 1 when a problem is found.",
                        0, -1);
    s->subcommands = {"check"};
    simple("store check", "Verify the store", "",
           "Verify every blob's digest, every cache entry and every tagged image.\n"
           "Exit status 1 when a problem is found.",
           0, 0);
  }
  simple("tag", "Give a stored image another name", "SOURCE TARGET", "Give a stored image another name.", 2, 2, {},
         "ocib tag app:1 registry.example.com/team/app:1");
  simple("timeline", "Draw a build's --metadata-file as an HTML timeline page", "METADATA.json|- > FILE.html",
         "Draw an earlier build's step timings (the file ocib build --metadata-file wrote) as a\n"
         "self-contained HTML page, the one ocib build --timeline FILE.html writes: one lane per\n"
         "concurrently running step, cached steps hatched, the critical path highlighted, each bar's\n"
         "tooltip with the step, its stage and its duration. Nothing in the page is fetched.\n"
         "- reads the metadata from stdin.",
         1, 1, {},
         "ocib build --metadata-file m.json -o type=oci,dest=app.tar .\n"
         "ocib timeline m.json > timeline.html",
         "json");
  simple("version", "Show the version", "", "Show the version.", 0, 0);
  {
    Command* g = simple("__generate", "Print a generated file", "bash|zsh|fish|man PAGE.scd|readme README.md",
                        "Print a file generated from the command table: a completion, or a man page or the\n"
                        "README with its generated parts replaced (scripts/generate-cli.sh).",
                        1, 2);
    g->hidden = true;
  }
  return t;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = make_table();
  return table;
}

const Command* find_command(std::string_view name) {
  for (const auto& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace ocib::cli
