#!/bin/bash
# expect_exit.sh CODE COMMAND...: runs COMMAND and passes when it exits with
# exactly CODE (for a test whose success is a particular failing status).
want=$1
shift
"$@"
got=$?
if [ "$got" -ne "$want" ]; then
  echo "exit status $got, want $want: $*"
  exit 1
fi
echo "exit status $got as expected"
