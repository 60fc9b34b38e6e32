# fish completion for ocib(1). Installed in fish's vendor_completions.d.
# Generated from src/cli/table.cc by `ocib __generate fish` (scripts/generate-cli.sh): do not edit.

set -l ocib_commands build bake images import du info inspect login logout manifest prune pull push rmi store tag timeline version help

complete -c ocib -f
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -s h -l help -d 'Show help'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -l version -d 'Show the version'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a build -d 'Build an image from a Dockerfile'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a bake -d 'Build several targets from a bake file'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a images -d 'List the images in the local store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a import -d 'Import a rootfs tar or OCI archive as an image'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a du -d 'Show the disk usage of the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a info -d 'Show the store, id mapping and sandbox support'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a inspect -d 'Print a stored image\'s manifest and config'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a login -d 'Store registry credentials (Docker config file)'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a logout -d 'Remove stored registry credentials'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a manifest -d 'Merge pushed images into one index, or inspect one (create, inspect)'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a prune -d 'Remove build cache and unreferenced data'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a pull -d 'Pull an image from a registry into the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a push -d 'Push a stored image to a registry'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a rmi -d 'Remove image names from the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a store -d 'Verify the store (ocib store check)'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a tag -d 'Give a stored image another name'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a timeline -d 'Draw a build\'s --metadata-file as an HTML timeline page'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a version -d 'Show the version'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a help -d 'Show help'

# ocib build [OPTIONS] CONTEXT
complete -c ocib -n '__fish_seen_subcommand_from build' -a '(__fish_complete_directories)' -d 'Build context'
complete -c ocib -n '__fish_seen_subcommand_from build' -s f -l file -r -F -d 'Dockerfile (default: CONTEXT/Dockerfile; - reads stdin)'
complete -c ocib -n '__fish_seen_subcommand_from build' -s t -l tag -x -d 'Name the image (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l target -x -d 'Build this stage (default: the last)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l label -x -d 'Set a label on the image (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l build-context -x -d 'An extra context for FROM NAME / COPY --from=NAME / RUN...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l build-arg -x -d 'Set a build-time variable (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l platform -x -a 'linux/amd64 linux/arm64 linux/amd64,linux/arm64' -d 'Build for these platforms (linux/amd64,linux/arm64,...); several make...'
complete -c ocib -n '__fish_seen_subcommand_from build' -s o -l output -x -a 'type=oci,dest= type=oci-layout,dest= type=docker,dest= type=local,dest= type=tar,dest= type=image,name= type=registry,name=' -d 'Type=image,name=REF[,push=true] | type=registry,name=REF |...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l annotation -x -d '[TYPE[,TYPE][[PLATFORM]]:]KEY=VALUE on the manifest (default), index,...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l ulimit -x -d 'Resource limit for RUN steps, e.g. nofile=1024:2048 (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l isolation -x -a 'auto full procfs-less chroot' -d 'Auto | full | procfs-less | chroot (= OCIB_ISOLATION; see ocib info)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l add-host -x -d 'An /etc/hosts entry for every RUN (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l shm-size -x -d 'Size of /dev/shm in RUN steps (default 64m)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l check -d 'Lint instead of building (buildx --call=check): exit 1 on warnings'
complete -c ocib -n '__fish_seen_subcommand_from build' -l call -x -a 'build check' -d 'Build (the default) | check: the same as --check'
complete -c ocib -n '__fish_seen_subcommand_from build' -l push -d 'Push the image to the -t names (= -o type=registry)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l iidfile -r -F -d 'Write the image ID (config digest; index digest for several...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l print -x -a 'graph graph-json lint plan' -d 'Do not build; print the stage graph (graph: DOT, graph-json), lint...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l fix -d 'With --print=lint: rewrite the Dockerfile into the parallel shape'
complete -c ocib -n '__fish_seen_subcommand_from build' -l secret -x -d 'Id=ID,src=FILE | id=ID,env=VAR: for RUN --mount=type=secret'
complete -c ocib -n '__fish_seen_subcommand_from build' -l provenance -x -a 'true false mode=min mode=max' -d 'True|false|mode=min|max: a SLSA provenance attestation (default for...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l sbom -x -a 'true false' -d 'True|false: an SPDX SBOM attestation of the image\'s packages'
complete -c ocib -n '__fish_seen_subcommand_from build' -l attest -x -a 'type=provenance type=provenance,mode=max type=sbom' -d 'Type=provenance[,mode=max] | type=sbom'
complete -c ocib -n '__fish_seen_subcommand_from build' -l load -d 'Load the image into the docker daemon (DOCKER_HOST or...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l ssh -x -d 'An ssh agent (or key files) for RUN --mount=type=ssh'
complete -c ocib -n '__fish_seen_subcommand_from build' -l pull -x -a 'always missing never true false' -d 'Base images from registries: always | missing | never (default:...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from build' -l registry-mirror -x -d 'Try MIRROR (host[:port]) first for images of HOST (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l progress -x -a 'auto tty plain rawjson quiet' -d 'Auto (default: tty on a terminal, else plain) | tty | plain | rawjson...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l metadata-file -r -F -d 'Write the image digest and per-step timings as JSON'
complete -c ocib -n '__fish_seen_subcommand_from build' -l timeline -r -F -d 'Write an HTML page of the build\'s steps over time (lanes of...'
complete -c ocib -n '__fish_seen_subcommand_from build' -s j -l jobs -x -d 'Run at most N steps at once (default: max(4, CPUs))'
complete -c ocib -n '__fish_seen_subcommand_from build' -l no-cache -d 'Do not use the build cache'
complete -c ocib -n '__fish_seen_subcommand_from build' -l no-cache-filter -x -d 'Run the steps of these stages again; others may be cached (repeatable)'
complete -c ocib -n '__fish_seen_subcommand_from build' -l cache-to -x -a 'type=local,dest= type=registry,ref= type=inline' -d 'Export the build cache: type=local,dest=DIR | type=registry,ref=REF...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l cache-from -x -a 'type=local,src= type=registry,ref=' -d 'Import a build cache: type=local,src=DIR | type=registry,ref=REF (a...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l network -x -a 'default none host' -d 'Network of RUN steps: default (each step its own network namespace...'
complete -c ocib -n '__fish_seen_subcommand_from build' -l allow -x -a 'security.insecure network.host' -d 'Security.insecure: let RUN --security=insecure run with every...'
complete -c ocib -n '__fish_seen_subcommand_from build' -s q -l quiet -d 'Same as --progress=quiet'
complete -c ocib -n '__fish_seen_subcommand_from build' -s h -l help -d 'Show help'

# ocib bake [OPTIONS] [TARGET|GROUP...]
complete -c ocib -n '__fish_seen_subcommand_from bake' -s f -l file -r -F -d 'Bake file (repeatable; default: buildx\'s lookup)'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l set -x -d 'Override an attribute (TARGET may be a pattern:...'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l print -d 'Print the resolved definition as JSON; build nothing'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l list -x -a 'targets' -d 'List the targets and groups (targets); build nothing'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l push -d 'Push every target\'s tags'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l load -d 'Load every target into the docker daemon, else podman'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l no-cache -d 'Do not use the build cache'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l pull -x -a 'always missing never true false' -d 'Base images from registries: always | missing | never (default:...'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l progress -x -a 'auto tty plain rawjson quiet' -d 'Auto (default: tty on a terminal, else plain) | tty | plain | rawjson...'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l metadata-file -r -F -d 'Write each target\'s digest and step timings as JSON'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l timeline -r -F -d 'Write an HTML page of every target\'s steps over time'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l allow -x -a 'security.insecure network.host' -d 'Security.insecure: let RUN --security=insecure run with every...'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l provenance -x -a 'true false mode=min mode=max' -d 'True|false|mode=min|max: a SLSA provenance attestation'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l sbom -x -a 'true false' -d 'True|false: an SPDX SBOM attestation'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l call -x -a 'build check' -d 'Build (the default) | check: the same as --check'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l check -d 'Lint every target instead of building: exit 1 on warnings'
complete -c ocib -n '__fish_seen_subcommand_from bake' -s j -l jobs -x -d 'Run at most N steps at once (default: max(4, CPUs))'
complete -c ocib -n '__fish_seen_subcommand_from bake' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from bake' -s h -l help -d 'Show help'

# ocib images
complete -c ocib -n '__fish_seen_subcommand_from images' -s h -l help -d 'Show help'

# ocib import [--platform OS/ARCH] FILE NAME[:TAG]
complete -c ocib -n '__fish_seen_subcommand_from import' -F
complete -c ocib -n '__fish_seen_subcommand_from import' -l platform -x -a 'linux/amd64 linux/arm64' -d 'The rootfs\'s platform (default: the host\'s), e.g. an arm64 rootfs for...'
complete -c ocib -n '__fish_seen_subcommand_from import' -s h -l help -d 'Show help'

# ocib du
complete -c ocib -n '__fish_seen_subcommand_from du' -s h -l help -d 'Show help'

# ocib info
complete -c ocib -n '__fish_seen_subcommand_from info' -s h -l help -d 'Show help'

# ocib inspect NAME
complete -c ocib -n '__fish_seen_subcommand_from inspect' -s h -l help -d 'Show help'

# ocib login [OPTIONS] REGISTRY
complete -c ocib -n '__fish_seen_subcommand_from login' -s u -l username -x -d 'The user name'
complete -c ocib -n '__fish_seen_subcommand_from login' -s p -l password -x -d 'The password (visible to other users: prefer --password-stdin)'
complete -c ocib -n '__fish_seen_subcommand_from login' -l password-stdin -d 'Read the password from stdin'
complete -c ocib -n '__fish_seen_subcommand_from login' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from login' -s h -l help -d 'Show help'

# ocib logout REGISTRY
complete -c ocib -n '__fish_seen_subcommand_from logout' -s h -l help -d 'Show help'

# ocib manifest create|inspect ...
complete -c ocib -n '__fish_seen_subcommand_from manifest; and not __fish_seen_subcommand_from create inspect' -a create -d 'Merge pushed images into one image index and push it'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and not __fish_seen_subcommand_from create inspect' -a inspect -d 'Show a manifest or index in a registry'
complete -c ocib -n '__fish_seen_subcommand_from manifest' -s h -l help -d 'Show help'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from create' -s t -l tag -x -d 'Push the index under this name (repeatable; at least one)'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from create' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from create' -s h -l help -d 'Show help'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from inspect' -l raw -d 'Print the document as the registry serves it'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from inspect' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from manifest; and __fish_seen_subcommand_from inspect' -s h -l help -d 'Show help'

# ocib prune [--all] [--filter until=DURATION]
complete -c ocib -n '__fish_seen_subcommand_from prune' -s a -l all -d 'Also remove the tagged images'
complete -c ocib -n '__fish_seen_subcommand_from prune' -s f -l force -d 'Accepted for buildx compatibility (ocib never prompts)'
complete -c ocib -n '__fish_seen_subcommand_from prune' -l filter -x -a 'until=' -d 'Only cache entries older than DURATION (30m, 24h, 7d)'
complete -c ocib -n '__fish_seen_subcommand_from prune' -s h -l help -d 'Show help'

# ocib pull [--insecure-registry HOST] REF
complete -c ocib -n '__fish_seen_subcommand_from pull' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from pull' -s h -l help -d 'Show help'

# ocib push [--insecure-registry HOST] NAME [DEST]
complete -c ocib -n '__fish_seen_subcommand_from push' -l insecure-registry -x -d 'Allow plain HTTP / unverified TLS for this registry only'
complete -c ocib -n '__fish_seen_subcommand_from push' -s h -l help -d 'Show help'

# ocib rmi NAME...
complete -c ocib -n '__fish_seen_subcommand_from rmi' -s h -l help -d 'Show help'

# ocib store check
complete -c ocib -n '__fish_seen_subcommand_from store; and not __fish_seen_subcommand_from check' -a check -d 'Verify the store'
complete -c ocib -n '__fish_seen_subcommand_from store' -s h -l help -d 'Show help'
complete -c ocib -n '__fish_seen_subcommand_from store; and __fish_seen_subcommand_from check' -s h -l help -d 'Show help'

# ocib tag SOURCE TARGET
complete -c ocib -n '__fish_seen_subcommand_from tag' -s h -l help -d 'Show help'

# ocib timeline METADATA.json|- > FILE.html
complete -c ocib -n '__fish_seen_subcommand_from timeline' -F
complete -c ocib -n '__fish_seen_subcommand_from timeline' -s h -l help -d 'Show help'

# ocib version
complete -c ocib -n '__fish_seen_subcommand_from version' -s h -l help -d 'Show help'
