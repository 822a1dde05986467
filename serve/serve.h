/*
 * serve.h — libserve: `faultdrill serve`, the live shop on civetweb
 * (DESIGN.md §7). The platform hosted for real: a wall clock, civetweb's
 * worker threads reading through their own read-only handles, one writer
 * thread committing everyone's writes in groups, files on disk through the
 * fault VFS, and libfiu's remote control so faults can be switched at run
 * time. The routes and JSON shapes are in serve/API.md.
 */
#ifndef FAULTDRILL_SERVE_H
#define FAULTDRILL_SERVE_H

/*
 * The `serve` command: argv[0] is "serve", then its options (see --help).
 * Runs until SIGTERM or SIGINT, then stops accepting, finishes what is in
 * flight, closes the databases and returns 0. Returns 2 on bad usage, 3
 * when it cannot run (port in use, unwritable --data, a database that
 * cannot be opened), after one line on stderr saying why.
 */
int serve_main(int argc, char **argv);

#endif /* FAULTDRILL_SERVE_H */
