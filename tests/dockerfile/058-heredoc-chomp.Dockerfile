FROM debian
RUN <<-EOT
	echo tabbed
		echo more
	EOT
