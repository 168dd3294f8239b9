// `minipt run`: trains under MPI, writes the timeline, the JSON summary and the report.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include "app/commands.hpp"
#include "app/watchdog.hpp"
#include "comm/mpi_transports.hpp"
#include "config/config.hpp"
#include "core/error.hpp"
#include "core/parallel.hpp"
#include "trace/atomic_file.hpp"
#include "trace/provenance.hpp"
#include "trace/summary_json.hpp"
#include "trace/waits.hpp"
#include "train/trainer.hpp"
#include "workload/workload.hpp"

namespace minipt {

namespace {
// The strings of a JSON array joined with ';' (the HDF5 attributes hosts and devices).
std::string joined(const nlohmann::json& strings) {
  std::string out;
  for (size_t i = 0; i < strings.size(); ++i)
    out += (i ? ";" : "") + strings.at(i).get<std::string>();
  return out;
}

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
        trainer.kernel_tuning().setting == "none"
            ? ""
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

  rf.string_attrs = {{"minipt_version", prov.at("minipt_version").get<std::string>()},
                     {"git_revision", prov.at("git_revision").get<std::string>()},
                     {"config_toml", cfg.resolved_toml},
                     {"mode", to_string(cfg.run.mode)},
                     {"balance", cfg.balance.scheme},
                     {"backend", cfg.compute.backend},
                     {"transport", trainer.transport_name()},
                     {"onesided_same_node", trainer.transports().same_node.onesided},
                     {"onesided_other_node", trainer.transports().other_node.onesided},
                     {"collectives_same_node", trainer.transports().same_node.collectives},
                     {"collectives_other_node", trainer.transports().other_node.collectives},
                     {"replica_reduce", replica_reduce_attr(trainer.replica_reduction())},
                     {"replica_transport", trainer.replica_reduction().transport()},
                     {"workload", cfg.workload_name},
                     {"name", cfg.run.name},
                     {"hosts", joined(prov.at("hosts"))},
                     {"devices", joined(prov.at("devices"))},
                     {"created_utc", prov.at("created_utc").get<std::string>()},
                     {"kernel_tuning", trainer.kernel_tuning().text()},
                     {"peak_tflops_source", trainer.mfu_peak_source()},
                     {"run_id", new_run_id()}};
  rf.int_attrs = {{"schema_version", kSchemaVersion},
                  {"world_size", world},
                  {"clock_error_bound_ns", trainer.clock_error_bound_ns()},
                  {"warmup_steps", cfg.run.warmup_steps},
                  {"model_params", cfg.model.total_params()}};
  rf.float_attrs = {{"peak_tflops", trainer.mfu_peak_tflops()}};
  summarize_waits(rf, world, cfg.run.warmup_steps, cfg.run.mode == Mode::fsdp,
                  shard_group_size(cfg, world));
  write_run_file(cfg.run.out, rf);
  if (cfg.run.json) {
    // What the fsdp and odc runs of one problem must agree on (run/suite checks it).
    nlohmann::json j = summary_json(rf, cfg.run.out, prov);
    nlohmann::json losses = nlohmann::json::array();
    for (double l : trainer.losses()) losses.push_back(finite_or_null(l));
    j["verification"] = {
        {"passed", true},
        {"final_loss", trainer.losses().empty() ? nlohmann::json(nullptr)
                                                : finite_or_null(trainer.losses().back())},
        {"losses", losses},
        {"parameter_norm", finite_or_null(trainer.parameter_norm())}};
    write_file_atomically(json_path(cfg.run.out), json_text(j, 2) + "\n");
  }
  print_report(cfg, rf, world, !cl.quiet);
  std::printf("VERIFICATION PASSED\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace minipt
