/* The command line of one suite run on this machine. */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/ob_suite.h"

typedef struct {
    char **argv;
    int count;
    bool failed;
} arg_list;

static void push(arg_list *list, const char *arg) {
    char *copy = list->failed ? NULL : strdup(arg);
    if (!copy) {
        list->failed = true;
        return;
    }
    list->argv[list->count++] = copy;
}

static void push_number(arg_list *list, int value) {
    char text[16];
    snprintf(text, sizeof text, "%d", value);
    push(list, text);
}

char **ob_suite_command(const ob_suite *suite, const ob_suite_run *run, const ob_suite_programs *programs, bool force) {
    /* launcher (4) + optbench run (2) + args + --out, --threads, --force (5) + NULL */
    arg_list list = {.argv = calloc((size_t)run->n_args + 12, sizeof(char *))};
    if (!list.argv) return NULL;
    if (run->ranks > 1) {
        push(&list, programs->mpirun);
        push(&list, "-np");
        push_number(&list, run->ranks);
        push(&list, "--oversubscribe");
    }
    push(&list, programs->optbench);
    push(&list, "run");
    for (int i = 0; i < run->n_args; i++) push(&list, run->args[i]);
    push(&list, "--out");
    push(&list, run->out_path);
    if (suite->threads > 0) {
        push(&list, "--threads");
        push_number(&list, suite->threads);
    }
    if (force) push(&list, "--force");
    if (list.failed) {
        ob_suite_command_free(list.argv);
        return NULL;
    }
    return list.argv;
}

void ob_suite_command_free(char **argv) {
    for (char **arg = argv; arg && *arg; arg++) free(*arg);
    free(argv);
}
