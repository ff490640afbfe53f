#include "proxy/discovery/load_reporter.h"

#include <random>

#include "common/log.h"
#include "proxy/discovery/control_channel.h"

namespace eofaas::proxy {

LoadReporter::LoadReporter(LoadReporterOptions options, const Dispatcher& dispatcher)
    : options_(std::move(options)), dispatcher_(dispatcher) {}

LoadReporter::~LoadReporter() { Stop(); }

void LoadReporter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LoadReporter::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LoadReporter::ReportNow() {
  {
    std::lock_guard lock(mu_);
    report_now_ = true;
  }
  wake_.notify_all();
}

int LoadReporter::reports() const {
  std::lock_guard lock(mu_);
  return reports_;
}

void LoadReporter::Run() {
  std::mt19937_64 random(std::random_device{}());
  absl::Duration backoff = options_.initial_backoff;
  for (;;) {
    // A new channel for each attempt: it connects at once (see ControlPlaneChannel).
    auto endpoints = eofaas::v1::Endpoints::NewStub(ControlPlaneChannel(options_.address));
    if (Stream(*endpoints)) backoff = options_.initial_backoff;
    const absl::Duration delay = backoff * std::uniform_real_distribution<double>(0.5, 1.0)(random);
    backoff = std::min(backoff * 2, options_.max_backoff);
    std::unique_lock lock(mu_);
    // A cold call does not wait out the backoff: it is what the control plane must hear of.
    if (wake_.wait_for(lock, absl::ToChronoNanoseconds(delay),
                       [this] { return stopping_ || report_now_; }) &&
        stopping_) {
      return;
    }
  }
}

bool LoadReporter::Stream(eofaas::v1::Endpoints::Stub& endpoints) {
  grpc::ClientContext context;
  eofaas::v1::ReportLoadResponse response;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    active_ = &context;
  }
  auto writer = endpoints.ReportLoad(&context, &response);
  bool written = false;
  for (;;) {
    eofaas::v1::ReportLoadRequest report;
    report.set_proxy(options_.proxy);
    for (const FunctionLoad& load : dispatcher_.Load()) {
      auto* function = report.add_functions();
      function->set_function(load.function);
      function->set_in_flight(load.in_flight);
      function->set_queued(load.queued);
    }
    if (!writer->Write(report)) break;
    written = true;
    std::unique_lock lock(mu_);
    ++reports_;
    wake_.wait_for(lock, absl::ToChronoNanoseconds(options_.interval),
                   [this] { return stopping_ || report_now_; });
    report_now_ = false;
    if (stopping_) break;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  std::lock_guard lock(mu_);
  active_ = nullptr;
  if (!stopping_) {
    common::LogWarning("load reports to ", options_.address, " ended (", status.error_message(),
                       "); reconnecting");
  }
  return written;
}

}  // namespace eofaas::proxy
