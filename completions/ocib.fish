# fish completion for ocib(1). Installed in fish's vendor_completions.d.

set -l ocib_commands build du images import info inspect login logout prune pull push rmi store tag version help

complete -c ocib -f
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -s h -l help -d 'Show help'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -l version -d 'Show the version'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a build -d 'Build an image from a Dockerfile'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a info -d 'Show the store, id mapping and sandbox support'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a version -d 'Show the version'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a du -d 'Show the disk usage of the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a images -d 'List the images in the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a import -d 'Import a rootfs tar or OCI archive as an image'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a inspect -d 'Print a stored images manifest and config'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a login -d 'Store registry credentials'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a logout -d 'Remove stored registry credentials'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a prune -d 'Remove build cache and unreferenced data'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a pull -d 'Pull an image from a registry'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a push -d 'Push a stored image to a registry'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a rmi -d 'Remove image names from the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a store -d 'Verify the store'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a tag -d 'Give a stored image another name'
complete -c ocib -n "not __fish_seen_subcommand_from $ocib_commands" -a help -d 'Show help'

complete -c ocib -n '__fish_seen_subcommand_from info version' -s h -l help -d 'Show help'

# ocib build [OPTIONS] CONTEXT
set -l b '__fish_seen_subcommand_from build'
complete -c ocib -n $b -a '(__fish_complete_directories)' -d 'Build context'
complete -c ocib -n $b -s f -l file -r -F -d 'Dockerfile (default: CONTEXT/Dockerfile)'
complete -c ocib -n $b -s t -l tag -x -d 'Name the image (NAME[:TAG])'
complete -c ocib -n $b -l target -x -d 'Build this stage (default: the last)'
complete -c ocib -n $b -l build-arg -x -d 'Set a build-time variable (KEY=VALUE)'
complete -c ocib -n $b -s o -l output -x -a 'type=oci,dest= type=oci-layout,dest=' -d 'Write the image'
complete -c ocib -n $b -l progress -x -a 'plain quiet' -d 'Progress output'
complete -c ocib -n $b -l metadata-file -r -F -d 'Write digest and step timings as JSON'
complete -c ocib -n $b -s j -l jobs -x -d 'Run at most N steps at once'
complete -c ocib -n $b -l no-cache -d 'Do not use the build cache'
complete -c ocib -n $b -l network -x -a 'none host' -d 'Network of RUN steps'
complete -c ocib -n $b -s q -l quiet -d 'Same as --progress=quiet'
complete -c ocib -n $b -s h -l help -d 'Show help'
