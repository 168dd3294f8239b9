// `minipt simulate`: one process plays every rank of a run as a discrete-event
// simulation, with the plan a real run would make (the same lengths, balancer and
// microbatches, sequence for sequence) replaying each rank's step program, the list the
// trainer executes (step/program.hpp): the next unit's fetch posted while the current
// unit computes, at most one gradient push in flight, fsdp's collectives joined by every
// rank, odc's pulls and pushes, its barriers, the loss and gradient-norm all-reduces, the
// optimizer. Layers: sim/engine.* (events, links), sim/network.* (topology, links, NICs,
// one-sided pools), sim/collectives.* (groups, channels, matching), and the executor of
// the program (sim/simulate.cpp).
//
// Communication: collectives start when the last member posts and are priced like
// NCCL's ring (latency + bytes·(n−1)/n / bus bandwidth); small all-reduces and barriers
// like a tree (2·⌈log2 n⌉ latencies). Every transfer crosses links modelled as
// processor-sharing servers (sim/engine.hpp): each rank's ingress and egress, the
// owners' side as a pool of every rank's links (so pulls and pushes that meet at the
// owners contend there), and, between nodes, the node's network interfaces (one per
// GPU) on both ends. What the model leaves out is listed in README.md, "Scale model".
#pragma once

#include "config/config.hpp"
#include "model/cost_model.hpp"
#include "step/run_plan.hpp"
#include "trace/run_file.hpp"

namespace minipt {

struct SimStats {
  double wall_s = 0;     // host seconds the simulation took
  int traced_ranks = 0;  // ranks whose full /events are stored
};

// Simulates the run plan's steps on its world of ranks with its cost model (the
// configuration's cfg.sim: topology and trace sample). The RunFile has every rank's /steps
// and /workload, the /events of the sampled ranks, and the summary; its attributes are
// left for the caller.
RunFile simulate(const RunPlan& plan, SimStats* stats = nullptr);

// The ranks whose full events a simulation of `ranks` ranks stores: all if ranks ≤
// trace_ranks, else trace_ranks ranks spread evenly (always including 0 and ranks−1).
std::vector<int> traced_ranks(int ranks, int trace_ranks);

}  // namespace minipt
