/* ob_data_cli: `optbench data`, dataset preparation (DESIGN.md section 5):
 * `optbench data bert` makes BERT pretraining shards from plain text and
 * checks existing ones. */
#ifndef OB_DATA_CLI_H
#define OB_DATA_CLI_H

/* argv[1] is "data". Returns the exit code: 0 done, 1 internal error, 2 bad input. */
int ob_data_main(int argc, char **argv);

#endif
