// eofaas.v1.Provision over gRPC: translates messages and status codes to and from the
// Controller. Unary calls run on a worker pool so that no gRPC thread waits on SQLite.
#pragma once

#include "common/worker_pool.h"
#include "control/api/stream_writer.h"
#include "control/controller.h"
#include "eofaas/v1/provision.grpc.pb.h"

namespace eofaas::control {

class ProvisionService final : public eofaas::v1::Provision::CallbackService {
 public:
  ProvisionService(Controller& controller, common::WorkerPool& workers)
      : controller_(controller), workers_(workers) {}

  grpc::ServerUnaryReactor* CreateFunction(grpc::CallbackServerContext* context,
                                           const eofaas::v1::CreateFunctionRequest* request,
                                           eofaas::v1::CreateFunctionResponse* response) override;
  grpc::ServerUnaryReactor* UpdateFunction(grpc::CallbackServerContext* context,
                                           const eofaas::v1::UpdateFunctionRequest* request,
                                           eofaas::v1::UpdateFunctionResponse* response) override;
  grpc::ServerUnaryReactor* GetFunction(grpc::CallbackServerContext* context,
                                        const eofaas::v1::GetFunctionRequest* request,
                                        eofaas::v1::GetFunctionResponse* response) override;
  grpc::ServerUnaryReactor* ListFunctions(grpc::CallbackServerContext* context,
                                          const eofaas::v1::ListFunctionsRequest* request,
                                          eofaas::v1::ListFunctionsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteFunction(grpc::CallbackServerContext* context,
                                           const eofaas::v1::DeleteFunctionRequest* request,
                                           eofaas::v1::DeleteFunctionResponse* response) override;
  grpc::ServerUnaryReactor* ScaleFunction(grpc::CallbackServerContext* context,
                                          const eofaas::v1::ScaleFunctionRequest* request,
                                          eofaas::v1::ScaleFunctionResponse* response) override;
  grpc::ServerUnaryReactor* ListTemplates(grpc::CallbackServerContext* context,
                                          const eofaas::v1::ListTemplatesRequest* request,
                                          eofaas::v1::ListTemplatesResponse* response) override;
  grpc::ServerWriteReactor<eofaas::v1::WatchFunctionResponse>* WatchFunction(
      grpc::CallbackServerContext* context,
      const eofaas::v1::WatchFunctionRequest* request) override;
  grpc::ServerWriteReactor<eofaas::v1::GetBuildLogResponse>* GetBuildLog(
      grpc::CallbackServerContext* context, const eofaas::v1::GetBuildLogRequest* request) override;

  /// Ends every stream, and each one opened later, with `status`: for a shutdown.
  void EndStreams(const grpc::Status& status) { open_.CloseAll(status); }

 private:
  Controller& controller_;
  common::WorkerPool& workers_;
  OpenStreams open_;
};

}  // namespace eofaas::control
