// reskit bench: images per second of a training step (forward, backward, Adam) or of inference,
// the median of several steps after a warm-up. Under mpirun, data-parallel: --batch is the
// global batch, each rank steps on its share, rank 0 prints the global images/s and the
// compute time per step, the time gradient sums were in flight (buckets summed while backward goes
// on) and the exposed communication (what the step waited for after backward had ended). --report adds
// the CPU, the ISA oneDNN uses, the FMA peak measured here and the workload's share of it
// (bench_report.h). With --data FOLDER it measures the input pipeline instead, no model
// (bench_data.cpp).
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "bench_report.h"
#include "commands.h"
#include "reskit/distributed/data_parallel.h"
#include "reskit/error.h"
#include "reskit/models/registry.h"
#include "reskit/optim/loss.h"
#include "reskit/optim/optimizer.h"
#include "reskit/random.h"
#include "reskit/runtime.h"
#include "reskit/training/memory.h"
#include "stream_data.h"

namespace reskit::cli {

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Measure training or inference throughput");
  struct Args {
    std::string model = "resnet50", input = "64,64,3", mode = "train", dtype = "float32";
    int classes = 6, batch = 32, threads = 0, steps = 5, warmup = 1;
    bool profile = false, profile_layers = false, no_dct_scaling = false, report = false;
    ExchangeFlags exchange;
  };
  auto args = std::make_shared<Args>();
  auto data = std::make_shared<DataBenchArgs>();
  cmd->add_option("--model", args->model, "Model name")->capture_default_str()->check(model_name());
  auto* input = cmd->add_option("--input", args->input, "Input shape H,W,C (with --data: the image size)")
                    ->capture_default_str();
  cmd->add_option("--classes", args->classes, "Number of classes")
      ->capture_default_str()
      ->check(integer_at_least(1));
  add_batch_size_flag(*cmd, args->batch, "Batch size (1 for latency)");
  cmd->add_option("--mode", args->mode, "train or infer")
      ->capture_default_str()
      ->check(one_of({"train", "infer"}));
  cmd->add_option("--dtype", args->dtype, "float32, float64 or mixed_bfloat16 (bfloat16 convolutions)")
      ->capture_default_str()
      ->check(dtype_name());
  add_threads_flag(*cmd, args->threads);
  cmd->add_option("--steps", args->steps, "Timed steps")->capture_default_str()->check(integer_at_least(1));
  cmd->add_option("--warmup", args->warmup, "Untimed warm-up steps")
      ->capture_default_str()
      ->check(integer_at_least(0));
  cmd->add_flag("--profile", args->profile, "Print the time per layer kind and pass");
  cmd->add_flag("--profile-layers", args->profile_layers, "Print the time per layer and pass");
  cmd->add_option("--data", data->data,
                  "An image folder: measure the input pipeline over one pass (read, decode, augment, batch), "
                  "no model");
  cmd->add_option("--augment", data->augment,
                  "With --data: a list of pad-crop, flip and random-resized-crop");
  cmd->add_option("--data-workers", data->workers,
                  "With --data: decoding threads (default: the cores the training threads leave)")
      ->check(integer_at_least(1));
  cmd->add_option("--interpolation", data->interpolation, "With --data: how --input resizes")
      ->capture_default_str()
      ->check(one_of({"bilinear", "nearest", "bicubic", "area"}));
  cmd->add_flag("--no-dct-scaling", args->no_dct_scaling,
                "With --data: decode JPEGs at full size (to measure what DCT scaling saves)");
  add_limit_flag(*cmd, data->limit, "With --data: read only the first N files");
  cmd->add_flag("--report", args->report,
                "Also print the CPU, its ISA as oneDNN sees it, the FMA peak measured here and the "
                "workload's FLOP/s as a fraction of it");
  add_exchange_flags(*cmd, args->exchange);
  cmd->callback([cmd, args, data, input] {
    const Args& a = *args;
    if (!data->data.empty()) {
      for (const char* flag : {"--model", "--mode", "--dtype", "--classes", "--steps", "--warmup",
                               "--profile", "--profile-layers", "--report", "--allreduce-dtype",
                               "--allreduce-bucket-mb", "--allreduce-shared-memory"})
        if (cmd->count(flag) > 0)
          throw UsageError(std::string(flag) +
                           ": measures a model; --data measures the input pipeline alone");
      if (a.threads != 0) set_num_threads(a.threads);
      data->batch = a.batch;
      data->dct_scaling = !a.no_dct_scaling;
      if (input->count() > 0) data->input = a.input;
      run_data_bench(*data);
      return;
    }
    for (const char* flag : {"--augment", "--data-workers", "--interpolation", "--no-dct-scaling", "--limit"})
      if (cmd->count(flag) > 0) throw UsageError(std::string(flag) + ": expected it with --data");
    if (a.mode != "train" && a.mode != "infer") {
      throw UsageError("--mode: expected train or infer, got '" + a.mode + "'");
    }
    if (a.batch < 1) throw UsageError("--batch-size: expected a size >= 1, got " + std::to_string(a.batch));
    if (a.steps < 1) throw UsageError("--steps: expected a count >= 1, got " + std::to_string(a.steps));
    if (a.warmup < 0) throw UsageError("--warmup: expected a count >= 0, got " + std::to_string(a.warmup));
    const distributed::GradientExchange exchange = gradient_exchange(a.exchange, a.dtype);
    if (a.threads != 0) set_num_threads(a.threads);
    set_global_policy(a.dtype);
    set_random_seed(0);
    // Before any parallel region: OpenMP's idle threads spin for a while after one, and would share
    // the pinned threads' CPUs.
    const double round_trip_ns = a.report ? core_to_core_round_trip_ns() : 0.0;
    distributed::Communicator& job = distributed::world();
    if (a.batch % job.size() != 0) {
      throw UsageError("--batch-size: the global batch " + std::to_string(a.batch) +
                       " does not split evenly over " + std::to_string(job.size()) + " processes");
    }
    const int local = a.batch / job.size();
    Shape input = parse_shape("--input", a.input);
    Model model = build_model(a.model, input, a.classes);
    model.compile(std::make_shared<Adam>(), std::make_shared<CategoricalCrossentropy>(), {"accuracy"});
    // As fit and predict do: a batch too large for the memory there is fails here, named.
    check_model_fits(model, local, a.mode == "train");
    distributed::DataParallel replicas(model, &job, a.batch, "bench", exchange);
    replicas.broadcast_parameters();
    std::vector<std::int64_t> global(static_cast<std::size_t>(a.batch));
    for (int i = 0; i < a.batch; ++i) global[static_cast<std::size_t>(i)] = i;

    Shape xs{local};
    xs.insert(xs.end(), input.begin(), input.end());
    Tensor x = Tensor::uninitialized(xs), y({local, a.classes});
    std::mt19937_64 gen(0);
    std::normal_distribution<double> normal;
    for (std::int64_t i = 0; i < x.numel(); ++i) x.set(i, normal(gen));
    for (int i = 0; i < local; ++i) y.set(i * a.classes + static_cast<int>(gen() % a.classes), 1.0);

    auto step = [&] {
      if (a.mode == "train") {
        replicas.begin_step(global);
        model.train_on_batch(x, y);
      } else {
        model.forward(x, false);
      }
    };
    for (int i = 0; i < a.warmup; ++i) step();
    model.set_profiling(a.profile || a.profile_layers, a.profile_layers);
    std::vector<double> seconds, compute, allreduce, exposed;
    for (int i = 0; i < a.steps; ++i) {
      const double exposed_before = replicas.communication_seconds();
      const double allreduce_before = replicas.allreduce_seconds();
      auto t0 = std::chrono::steady_clock::now();
      step();
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      exposed.push_back(replicas.communication_seconds() - exposed_before);
      allreduce.push_back(replicas.allreduce_seconds() - allreduce_before);
      compute.push_back(seconds.back() - exposed.back());
    }
    auto median_of = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double median = median_of(seconds);
    if (job.rank() == 0)
      fmt::print("{} {} {} batch={} threads={} median_step_s={:.4f}\n", a.model, a.mode, a.dtype, a.batch,
                 num_threads(), median);
    if ((a.profile || a.profile_layers) && job.rank() == 0) {
      std::vector<std::pair<double, std::string>> rows;
      double total = 0;
      for (const auto& [k, v] : model.profile()) rows.emplace_back(v / a.steps, k), total += v / a.steps;
      std::sort(rows.rbegin(), rows.rend());
      const int width = a.profile_layers ? 44 : 32;
      fmt::print("{:<{}} {:>10} {:>7}\n", a.profile_layers ? "layer / pass" : "layer kind / pass", width,
                 "ms/step", "share");
      for (const auto& [v, k] : rows)
        fmt::print("{:<{}} {:>10.2f} {:>6.1f}%\n", k, width, v * 1e3, 100 * v / total);
      fmt::print("{:<{}} {:>10.2f}\n", "total (timed layers)", width, total * 1e3);
    }
    if (job.rank() != 0) return;  // rank 0 prints
    if (replicas.active()) {
      double gradient_mb = 0;
      for (Param* p : model.trainable_parameters())
        gradient_mb += static_cast<double>(p->value.numel() * dtype_size(p->value.dtype())) / 1e6;
      fmt::print(
          "processes={} gradient_mb={:.1f} allreduce_dtype={} bucket_mb={:g} compute_ms_per_step={:.1f} "
          "allreduce_ms_per_step={:.1f} exposed_communication_ms_per_step={:.1f}\n",
          job.size(), gradient_mb, exchange.wire == distributed::WireType::bfloat16 ? "bfloat16" : "native",
          a.exchange.bucket_mb, 1e3 * median_of(compute), 1e3 * median_of(allreduce),
          1e3 * median_of(exposed));
    }
    fmt::print("{:.1f} images/s\n", a.batch / median);
    if (a.report)
      print_report(model, a.mode == "train", a.dtype, num_threads(), a.batch / median, round_trip_ns);
  });
}

}  // namespace reskit::cli
