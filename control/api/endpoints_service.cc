#include "control/api/endpoints_service.h"

#include "absl/strings/str_cat.h"
#include "control/api/stream_writer.h"

namespace eofaas::control {
namespace {

// The load of one report by function, or why the report is invalid.
absl::StatusOr<std::map<std::string, int64_t>> LoadOf(const eofaas::v1::ReportLoadRequest& report) {
  if (report.proxy().empty()) return absl::InvalidArgumentError("proxy: required");
  std::map<std::string, int64_t> load;
  for (int i = 0; i < report.functions_size(); ++i) {
    const auto& function = report.functions(i);
    if (function.in_flight() < 0 || function.queued() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("functions[", i, "]: in_flight and queued must not be negative"));
    }
    load[function.function()] += int64_t{function.in_flight()} + function.queued();
  }
  return load;
}

// Reads reports until the proxy ends the stream; owns itself.
class LoadReader final : public grpc::ServerReadReactor<eofaas::v1::ReportLoadRequest> {
 public:
  explicit LoadReader(Controller& controller) : controller_(controller) { StartRead(&report_); }

 private:
  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the proxy closed its side
    absl::StatusOr<std::map<std::string, int64_t>> load = LoadOf(report_);
    if (!load.ok()) {
      return Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(load.status().message())));
    }
    controller_.ReportLoad(report_.proxy(), *load);
    StartRead(&report_);
  }
  void OnDone() override { delete this; }

  Controller& controller_;
  eofaas::v1::ReportLoadRequest report_;
};

}  // namespace

grpc::ServerWriteReactor<eofaas::v1::WatchEndpointsResponse>* EndpointsService::WatchEndpoints(
    grpc::CallbackServerContext* context, const eofaas::v1::WatchEndpointsRequest* request) {
  auto* writer = new QueuedWriter<eofaas::v1::WatchEndpointsResponse>(kMaxQueuedMessages, &open_);
  uint64_t id = controller_.WatchEndpoints(
      [writer](const eofaas::v1::WatchEndpointsResponse& change) { writer->Push(change); });
  writer->Start([this, id] { controller_.UnwatchEndpoints(id); });
  return writer;
}

grpc::ServerReadReactor<eofaas::v1::ReportLoadRequest>* EndpointsService::ReportLoad(
    grpc::CallbackServerContext*, eofaas::v1::ReportLoadResponse*) {
  return new LoadReader(controller_);
}

}  // namespace eofaas::control
