// `minipt run`: trains under MPI, writes the timeline, the JSON summary and the report.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "app/commands.hpp"
#include "app/results.hpp"
#include "app/watchdog.hpp"
#include "comm/mpi_transports.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "trace/provenance.hpp"
#include "train/trainer.hpp"
#include "workload/workload.hpp"

namespace minipt {

namespace {
// The replica_reduce root attribute: none (one replica), step or unit.
std::string replica_reduce_attr(const ReplicaReduction& rr) {
  if (!rr.active()) return "none";
  return rr.per_unit() ? "unit" : "step";
}

}  // namespace

int run_command(const CommandLine& cl, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &world);
  const RunPlan plan = load_agreed_plan(cl, comm);  // lengths, plans, cost model, FLOPs
  const Config& cfg = plan.config();
  // run.timeout_s covers everything from here to the last output file on this rank.
  Watchdog watchdog(cfg.run.timeout_s,
                    [rank, timeout = cfg.run.timeout_s, steps = cfg.run.steps](int step) {
                      const std::string msg = timeout_message(rank, timeout, step, steps);
                      std::fprintf(stderr, "%s\n", msg.c_str());
                      std::fflush(stderr);
                      MPI_Abort(MPI_COMM_WORLD, 1);
                      std::_Exit(1);  // MPI_Abort does not return
                    });
  check_outputs(cfg, comm);
  // The progress watchdog (on by default): a stalled step ends the job naming the ranks
  // that did not reach it.
  std::unique_ptr<ProgressWatchdog> progress =
      start_progress_watchdog(comm,
                              {.factor = cfg.run.watchdog_factor,
                               .floor_s = cfg.run.watchdog_floor_s,
                               .grace_s = cfg.run.watchdog_grace_s},
                              [](const std::string& msg) {
                                std::fprintf(stderr, "%s\n", msg.c_str());
                                std::fflush(stderr);
                                MPI_Abort(MPI_COMM_WORLD, 1);
                                std::_Exit(1);  // MPI_Abort does not return
                              });

  Trainer trainer(plan, comm);
  if (rank == 0 && !cl.quiet) {
    // The device in parentheses, unless it is the backend's own name (emulated).
    const std::string device = trainer.backend().device_name();
    const std::string backend =
        device == cfg.compute.backend ? device : cfg.compute.backend + " (" + device + ")";
    // Hybrid sharding: how and over what the replicas sum their gradient shards.
    const ReplicaReduction& rr = trainer.replica_reduction();
    const std::string replica = rr.active() ? " | replica reduce per " +
                                                  std::string(rr.per_unit() ? "unit" : "step") +
                                                  " over " + rr.transport()
                                            : "";
    std::printf(
        "minipt %s | %s+%s | %d ranks | backend %s | transport %s | %s%s | nodes %dx%d | model "
        "%lld params, recompute %d of %d blocks | workload %s%s\n",
        MINIPT_VERSION, to_string(cfg.run.mode).c_str(), cfg.balance.scheme.c_str(), world,
        backend.c_str(), trainer.transport_name().c_str(),
        describe_peer_transports(trainer.transports()).c_str(), replica.c_str(),
        trainer.nodes().nodes, trainer.nodes().ranks_per_node,
        static_cast<long long>(cfg.model.total_params()), trainer.backend().recomputed_blocks(),
        cfg.model.layers, cfg.workload_name.c_str(),
        !trainer.kernel_tuning().active ? ""
                                        : (" | tuning " + trainer.kernel_tuning().text()).c_str());
  }
  trainer.run(!cl.quiet, [&](int step) {
    watchdog.set_step(step);
    if (progress) progress->progress(step, cfg.run.steps);
  });
  watchdog.set_step(cfg.run.steps);
  if (progress) progress->progress(cfg.run.steps, cfg.run.steps);
  RunFile rf = trainer.collect();
  // In-run verification (collective): finite losses and parameters, the same loss on every
  // rank, identical parameter shards across replicas. A failure reports no figure of merit.
  const std::string failed = trainer.verify();
  if (!failed.empty()) {
    if (rank == 0) {
      std::printf("VERIFICATION FAILED: %s\n", failed.c_str());
      std::fflush(stdout);
      std::fprintf(stderr, "minipt: error: verification failed: %s\n", failed.c_str());
    }
    return 1;
  }

  const nlohmann::json prov = provenance(comm, trainer.backend().device_name(), cl.argv);
  // Past the last collective: rank 0 writes alone (run.timeout_s still covers it).
  progress.reset();
  if (rank != 0) return 0;

  const StrategyOptions& peers = trainer.transports();
  RunFacts facts(cfg);
  facts.world = world;
  facts.provenance = prov;
  facts.backend = cfg.compute.backend;
  facts.transport = trainer.transport_name();
  facts.hosts = prov.at("hosts").get<std::vector<std::string>>();
  facts.devices = prov.at("devices").get<std::vector<std::string>>();
  facts.clock_error_bound_ns = trainer.clock_error_bound_ns();
  facts.peak_tflops = trainer.mfu_peak_tflops();
  facts.onesided_same_node = peers.same_node.onesided;
  facts.onesided_other_node = peers.other_node.onesided;
  facts.collectives_same_node = peers.same_node.collectives;
  facts.collectives_other_node = peers.other_node.collectives;
  facts.replica_reduce = replica_reduce_attr(trainer.replica_reduction());
  facts.replica_transport = trainer.replica_reduction().transport();
  facts.kernel_tuning = trainer.kernel_tuning().text();
  facts.peak_tflops_source = trainer.mfu_peak_source();
  facts.verification = Verification{trainer.losses(), trainer.parameter_norm()};
  write_results(facts, rf, !cl.quiet);
  return 0;
}

}  // namespace minipt
