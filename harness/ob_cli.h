/* ob_cli: the `optbench` command line (DESIGN.md section 5). */
#ifndef OB_CLI_H
#define OB_CLI_H

#include <stdbool.h>

/* Returns the process exit code: 0 success, 1 internal error, 2 bad input. */
int ob_cli_main(int argc, char **argv);

/* Whether any of argv[first..argc) is --help or -h: a subcommand prints its
 * usage and exits 0 before it judges any other argument. */
bool ob_cli_asks_help(int argc, char **argv, int first);

#endif
