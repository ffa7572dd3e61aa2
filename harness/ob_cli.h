/* ob_cli: the `optbench` command line (DESIGN.md section 5). */
#ifndef OB_CLI_H
#define OB_CLI_H

/* Returns the process exit code: 0 success, 1 internal error, 2 bad input. */
int ob_cli_main(int argc, char **argv);

#endif
