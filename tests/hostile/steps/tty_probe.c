// Run inside a RUN step (static): reports whether the step can reach the caller's terminal.
// Prints one line per probe; "ok" after TIOCSTI means it could type into the terminal.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(void) {
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
  if (fd < 0) {
    printf("open /dev/tty: %s\n", strerror(errno));
  } else {
    char c = ' ';
    int r = ioctl(fd, TIOCSTI, &c);
    printf("open /dev/tty: ok\nTIOCSTI /dev/tty: %s\n", r == 0 ? "ok" : strerror(errno));
  }
  for (int i = 0; i < 3; ++i) {
    if (!isatty(i)) {
      printf("fd %d: not a tty\n", i);
      continue;
    }
    char c = ' ';
    int r = ioctl(i, TIOCSTI, &c);
    printf("TIOCSTI fd %d: %s\n", i, r == 0 ? "ok" : strerror(errno));
  }
  return 0;
}
