// Termination signals (SIGTERM from Slurm's scancel or a time limit, SIGINT from
// Ctrl-C): the rank says so on stderr, removes the temp files it is writing (the final
// output files are only ever renamed into place, so none is left half-written) and ends
// with the signal's own status (a shell reports 128 + signal).
#pragma once

namespace minipt {

// Installs the handlers for SIGTERM and SIGINT; `rank` goes into the message. The
// message is formatted here, so the handler itself calls async-signal-safe functions
// only (write, unlink, raise, _exit). A second signal while the handler runs gets the
// default action (SA_RESETHAND).
void install_termination_handlers(int rank);

// Called once the command's work is done (before MPI_Finalize): a termination signal
// after this cuts nothing short, so the handler ends the process without the message.
// (When one rank exits non-zero, Open MPI's launcher sends SIGTERM to the others, which
// are then waiting in MPI_Finalize; their message would only be noise.)
void silence_termination_message() noexcept;

}  // namespace minipt
