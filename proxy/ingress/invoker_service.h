// The gRPC front of eofaas-proxy: eofaas.v1.Invoker. Invoke runs one cursor, Map plans a data
// set and streams one item per cursor, several to a message when they complete together. The
// service translates messages and statuses only: validation lives in request_validation.h and the
// planner's room, the work in invoke_call.h and the reactors (invoke_reactor.h, map_reactor.h).
#pragma once

#include "eofaas/v1/invoker.grpc.pb.h"
#include "proxy/ingress/ingress.h"

namespace eofaas::proxy {

/// Handlers never block: a file:// cursor is checked on a worker, a Map is planned on one, and
/// invocations complete on the dispatcher's threads. Thread-safe. `services` must outlive the
/// gRPC server that serves it (the server's Shutdown ends every call first).
class InvokerService final : public eofaas::v1::Invoker::CallbackService {
 public:
  explicit InvokerService(const IngressServices& services) : services_(services) {}

  /// INVALID_ARGUMENT naming the field (function, timeout, cursor.*, args), NOT_FOUND for an
  /// unknown function, PERMISSION_DENIED for a file outside the data roots, then the
  /// dispatcher's statuses. A handler's error is an OK call with `error` set.
  grpc::ServerUnaryReactor* Invoke(grpc::CallbackServerContext* context,
                                   const eofaas::v1::InvokeRequest* request,
                                   eofaas::v1::InvokeResponse* response) override;

  /// `planned`, then `items` events that carry one item per cursor (a cursor that could not be
  /// run is an item with `failure`), then `done`; the stream ends OK. In `done`, `succeeded` counts
  /// the items with a result, `failed` the others, and `retried` the items that took more than one
  /// attempt. Request errors end it before `planned` with the codes of Invoke (inputs and
  /// partitioning named as the planner names them).
  grpc::ServerWriteReactor<eofaas::v1::MapResponse>* Map(
      grpc::CallbackServerContext* context, const eofaas::v1::MapRequest* request) override;

 private:
  const IngressServices& services_;
};

}  // namespace eofaas::proxy
