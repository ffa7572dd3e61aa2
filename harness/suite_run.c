/* Running a suite on this machine: one run at a time, each a child process
 * of this binary (under mpirun when it has several ranks). */
#define _POSIX_C_SOURCE 200809L /* sigaction, sigwaitinfo, setpgid */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/ob_suite.h"
#include "harness/ob_text.h"

static int print_command(FILE *out, char *const *argv) {
    ob_text text = {0};
    for (int i = 0; argv[i]; i++) {
        if (i) ob_text_append(&text, " ", 1);
        ob_text_append_shell_word(&text, argv[i]);
    }
    int rc = text.failed ? 1 : 0;
    fprintf(out, "%s\n", rc ? "(out of memory)" : ob_text_str(&text));
    ob_text_free(&text);
    return rc;
}

/* What the next step does with a run: nothing when final, else its command. */
static char **plan_run(const ob_suite *suite, const ob_suite_run *run, const ob_suite_programs *programs,
                       ob_suite_outcome *outcome) {
    *outcome = ob_suite_read_outcome(run->out_path);
    if (outcome->state == OB_SUITE_FINAL) return NULL;
    return ob_suite_command(suite, run, programs, outcome->state != OB_SUITE_MISSING);
}

int ob_suite_print_plan(const ob_suite *suite, const ob_suite_programs *programs, FILE *out) {
    int rc = 0;
    for (int i = 0; i < suite->n_runs && !rc; i++) {
        const ob_suite_run *run = &suite->runs[i];
        ob_suite_outcome outcome;
        char **argv = plan_run(suite, run, programs, &outcome);
        fprintf(out, "%s/%s: ", run->run_name, run->id);
        if (outcome.state == OB_SUITE_FINAL)
            fprintf(out, "skip (%s)\n", outcome.status);
        else
            rc = argv ? print_command(out, argv) : 1;
        ob_suite_command_free(argv);
    }
    return rc;
}

/* Runs argv as a child in its own process group and waits for it. While it
 * runs, SIGINT and SIGTERM are held back from this process and passed on to
 * the child once, so that the run closes its file as aborted before the
 * suite stops (a terminal's Ctrl-C reaches only this process's group).
 * Returns the signal that asks the suite to stop, or 0. */
static int run_child(char **argv, int *exit_code) {
    sigset_t waited, old_mask;
    sigemptyset(&waited);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGCHLD);
    /* An inherited SIG_IGN would make the kernel reap the child unseen. */
    struct sigaction child_default = {.sa_handler = SIG_DFL}, old_child;
    sigaction(SIGCHLD, &child_default, &old_child);
    sigprocmask(SIG_BLOCK, &waited, &old_mask);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* Runs read nothing, and a launcher in a background process group
         * that tried to read the terminal would be stopped. */
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd > STDIN_FILENO) {
            dup2(null_fd, STDIN_FILENO);
            close(null_fd);
        }
        setpgid(0, 0);
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "optbench: suite: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int stop = 0, status = 0;
    while (pid > 0) {
        int signo = sigwaitinfo(&waited, NULL);
        if (signo == SIGCHLD && waitpid(pid, &status, WNOHANG) == pid) break;
        if ((signo == SIGINT || signo == SIGTERM) && !stop) {
            stop = signo;
            kill(pid, signo);
        }
    }
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    sigaction(SIGCHLD, &old_child, NULL);
    if (pid < 0)
        *exit_code = -1;
    else
        *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return stop;
}

int ob_suite_run_local(const ob_suite *suite, const ob_suite_programs *programs, char *err, size_t err_len) {
    int stop = 0;
    for (int i = 0; i < suite->n_runs && !stop; i++) {
        const ob_suite_run *run = &suite->runs[i];
        ob_suite_outcome outcome;
        char **argv = plan_run(suite, run, programs, &outcome);
        printf("[%d/%d] %s/%s: ", i + 1, suite->n_runs, run->run_name, run->id);
        if (outcome.state == OB_SUITE_FINAL) {
            printf("skip (%s)\n", outcome.status);
            continue;
        }
        int rc = argv ? ob_suite_make_dirs(run->out_path, true, err, err_len) : 1;
        if (!rc) rc = print_command(stdout, argv);
        if (rc) {
            if (!argv) snprintf(err, err_len, "out of memory");
            ob_suite_command_free(argv);
            return rc;
        }
        int exit_code;
        stop = run_child(argv, &exit_code);
        if (exit_code < 0)
            fprintf(stderr, "optbench: suite: %s/%s: fork failed, the run was not started\n", run->run_name, run->id);
        else if (exit_code != 0)
            fprintf(stderr, "optbench: suite: %s/%s: exited with status %d\n", run->run_name, run->id, exit_code);
        ob_suite_command_free(argv);
    }
    printf("\n");
    bool all_final = ob_suite_print_summary(suite, stdout);
    if (stop) {
        printf("suite stopped by signal %d; run it again to resume\n", stop);
        return 130;
    }
    return all_final ? 0 : 1;
}
