#include "control/api/provision_service.h"

#include "common/status.h"
#include "control/api/stream_writer.h"

namespace eofaas::control {
namespace {

using namespace eofaas::v1;

// Runs `work` (returning absl::Status) on the worker pool and finishes the call from there.
template <typename Work>
grpc::ServerUnaryReactor* OnWorker(grpc::CallbackServerContext* context,
                                   common::WorkerPool& workers, Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = workers.Submit([reactor, work = std::move(work)]() mutable {
    reactor->Finish(common::ToGrpcStatus(work()));
  });
  if (!queued) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "control plane busy"));
  }
  return reactor;
}

// A server stream fed by a controller subscription. `subscribe` runs on the worker pool (it takes
// the controller's lock and may read the store) and returns the subscription id (0: nothing to
// follow) or an error that ends the stream; `unsubscribe` runs when the stream is done.
template <typename Response>
grpc::ServerWriteReactor<Response>* OnWorkerStream(
    common::WorkerPool& workers, OpenStreams& open,
    std::function<absl::StatusOr<uint64_t>(QueuedWriter<Response>*)> subscribe,
    std::function<void(uint64_t)> unsubscribe) {
  auto* writer = new QueuedWriter<Response>(kMaxQueuedMessages, &open);
  bool queued = workers.Submit(
      [writer, subscribe = std::move(subscribe), unsubscribe = std::move(unsubscribe)] {
        absl::StatusOr<uint64_t> id = subscribe(writer);
        if (!id.ok()) writer->Close(common::ToGrpcStatus(id.status()));
        writer->Start([id, unsubscribe] {
          if (id.ok() && *id != 0) unsubscribe(*id);
        });
      });
  if (!queued) {
    writer->Close(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "control plane busy"));
    writer->Start();
  }
  return writer;
}

// Stores `result`'s value into `*out` or returns its error.
absl::Status Assign(absl::StatusOr<Function> result, Function* out) {
  if (!result.ok()) return result.status();
  *out = std::move(*result);
  return absl::OkStatus();
}

absl::Status RequireName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name: required");
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* ProvisionService::CreateFunction(grpc::CallbackServerContext* context,
                                                           const CreateFunctionRequest* request,
                                                           CreateFunctionResponse* response) {
  return OnWorker(context, workers_, [this, request, response] {
    if (!request->has_function()) return absl::InvalidArgumentError("function: required");
    return Assign(controller_.Create(request->function()), response->mutable_function());
  });
}

grpc::ServerUnaryReactor* ProvisionService::UpdateFunction(grpc::CallbackServerContext* context,
                                                           const UpdateFunctionRequest* request,
                                                           UpdateFunctionResponse* response) {
  return OnWorker(context, workers_, [this, request, response] {
    if (!request->has_function()) return absl::InvalidArgumentError("function: required");
    return Assign(controller_.Update(request->function(), request->expected_generation()),
                  response->mutable_function());
  });
}

grpc::ServerUnaryReactor* ProvisionService::GetFunction(grpc::CallbackServerContext* context,
                                                        const GetFunctionRequest* request,
                                                        GetFunctionResponse* response) {
  return OnWorker(context, workers_, [this, request, response] {
    if (auto status = RequireName(request->name()); !status.ok()) return status;
    return Assign(controller_.Get(request->name()), response->mutable_function());
  });
}

grpc::ServerUnaryReactor* ProvisionService::ListFunctions(grpc::CallbackServerContext* context,
                                                          const ListFunctionsRequest* request,
                                                          ListFunctionsResponse* response) {
  return OnWorker(context, workers_, [this, request, response] {
    auto page = controller_.List(request->page_size(), request->page_token());
    if (!page.ok()) return page.status();
    for (auto& function : page->functions) *response->add_functions() = std::move(function);
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ProvisionService::DeleteFunction(grpc::CallbackServerContext* context,
                                                           const DeleteFunctionRequest* request,
                                                           DeleteFunctionResponse* response) {
  return OnWorker(context, workers_, [this, request, response] {
    if (auto status = RequireName(request->name()); !status.ok()) return status;
    return Assign(controller_.Delete(request->name()), response->mutable_function());
  });
}

grpc::ServerUnaryReactor* ProvisionService::ScaleFunction(grpc::CallbackServerContext* context,
                                                          const ScaleFunctionRequest* request,
                                                          ScaleFunctionResponse* response) {
  return OnWorker(context, workers_, [this, request, response] {
    if (auto status = RequireName(request->name()); !status.ok()) return status;
    return Assign(
        controller_.Scale(request->name(), request->min_replicas(), request->max_replicas()),
        response->mutable_function());
  });
}

grpc::ServerUnaryReactor* ProvisionService::ListTemplates(grpc::CallbackServerContext* context,
                                                          const ListTemplatesRequest* request,
                                                          ListTemplatesResponse* response) {
  for (const Template* t : controller_.Templates()) *response->add_templates() = t->ToProto();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<WatchFunctionResponse>* ProvisionService::WatchFunction(
    grpc::CallbackServerContext* context, const WatchFunctionRequest* request) {
  return OnWorkerStream<WatchFunctionResponse>(
      workers_, open_,
      [this, request](QueuedWriter<WatchFunctionResponse>* writer) -> absl::StatusOr<uint64_t> {
        if (auto status = RequireName(request->name()); !status.ok()) return status;
        return controller_.WatchFunction(request->name(), [writer](const FunctionEvent& event) {
          // The stream's end is the news of a deletion: the last state was already sent.
          if (event.deleted) {
            writer->Close(grpc::Status::OK);
            return;
          }
          WatchFunctionResponse response;
          *response.mutable_function() = event.function;
          writer->Push(std::move(response));
        });
      },
      [this](uint64_t id) { controller_.UnwatchFunction(id); });
}

grpc::ServerWriteReactor<GetBuildLogResponse>* ProvisionService::GetBuildLog(
    grpc::CallbackServerContext* context, const GetBuildLogRequest* request) {
  return OnWorkerStream<GetBuildLogResponse>(
      workers_, open_,
      [this, request](QueuedWriter<GetBuildLogResponse>* writer) -> absl::StatusOr<uint64_t> {
        if (auto status = RequireName(request->name()); !status.ok()) return status;
        return controller_.WatchBuildLog(request->name(), request->generation(), request->follow(),
                                         [writer](const BuildLogEvent& event) {
                                           for (const auto& line : event.lines) {
                                             GetBuildLogResponse response;
                                             response.set_line(line);
                                             writer->Push(std::move(response));
                                           }
                                           if (event.done) writer->Close(grpc::Status::OK);
                                         });
      },
      [this](uint64_t id) { controller_.UnwatchBuildLog(id); });
}

}  // namespace eofaas::control
