# shellcheck shell=sh disable=SC2154
## Why: runsv restarts ./run after every exit, and ./finish's exit status changes
## nothing (runsv(8)); only a command on its control fifo does. runsv runs
## ./finish in the service directory, as itself, with $1 ./run's exit code (-1
## when a signal ended it) and $2 the signal. Writing "d" (down) there sets the
## wanted state to down before ./finish exits: runsv reads its control fifo in
## the same round in which it reaps ./finish, and only starts ./run again at the
## top of the next round, when it is wanted up. "d" stops nothing here (./run
## has exited; runsv does not signal a running ./finish) and, unlike "o" (once),
## never starts anything, so it cannot undo a stop by procmgmt. A later
## "sv start" (procmgmt start NAME) wants the service up again; the activator
## sends it only once no ./finish runs, so this "d" cannot undo that either.
## procmgmt_restart (no, on-failure) is set by the generated file before this.
if [ "$procmgmt_restart" = no ] || [ "$1" = 0 ]; then
    printf d >supervise/control
fi
exit 0
