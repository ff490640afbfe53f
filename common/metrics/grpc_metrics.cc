// The go-grpc-prometheus server metrics: metric handles are resolved once per method at start-up;
// each RPC gets a small interceptor pointing at its method's handles.
#include "common/metrics/grpc_metrics.h"

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"

namespace eofaas::common {
namespace {

using grpc::experimental::InterceptionHookPoints;

// grpc::StatusCode runs from OK (0) to UNAUTHENTICATED (16).
constexpr int kCodeCount = 17;

const char* TypeName(GrpcType type) {
  switch (type) {
    case GrpcType::kUnary:
      return "unary";
    case GrpcType::kClientStream:
      return "client_stream";
    case GrpcType::kServerStream:
      return "server_stream";
    case GrpcType::kBidiStream:
      return "bidi_stream";
  }
  return "unary";
}

// One method's series; the pointers are owned by the registry's families.
struct MethodMetrics {
  prometheus::Counter* started;
  std::array<prometheus::Counter*, kCodeCount> handled;
  prometheus::Histogram* handling_seconds;
  prometheus::Counter* msg_received;
  prometheus::Counter* msg_sent;
};

// Immutable once built; shared by the factory and the live interceptors.
struct MethodTable {
  std::shared_ptr<prometheus::Registry> registry;
  std::map<std::string, MethodMetrics, std::less<>> by_path;  // "/package.Service/Method"
};

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(std::shared_ptr<const MethodTable> table, const MethodMetrics* metrics)
      : table_(std::move(table)), metrics_(metrics), start_(std::chrono::steady_clock::now()) {
    metrics_->started->Increment();
  }

  // A call torn down without sending a status (e.g. at server shutdown) still counts as handled.
  ~MetricsInterceptor() override { RecordHandled(grpc::StatusCode::CANCELLED); }

  // May run concurrently for one streaming call (a read and a write batch).
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      metrics_->msg_received->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
      metrics_->msg_sent->Increment();
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      RecordHandled(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void RecordHandled(grpc::StatusCode code) {
    if (handled_.exchange(true)) return;
    int index = static_cast<int>(code);
    if (index < 0 || index >= kCodeCount) index = static_cast<int>(grpc::StatusCode::UNKNOWN);
    metrics_->handled[index]->Increment();
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    metrics_->handling_seconds->Observe(elapsed.count());
  }

  const std::shared_ptr<const MethodTable> table_;
  const MethodMetrics* const metrics_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<bool> handled_{false};
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(std::shared_ptr<const MethodTable> table)
      : table_(std::move(table)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    auto it = table_->by_path.find(std::string_view(info->method()));
    if (it == table_->by_path.end()) return nullptr;  // not a known method: not counted
    return new MetricsInterceptor(table_, &it->second);
  }

 private:
  const std::shared_ptr<const MethodTable> table_;
};

}  // namespace

std::vector<GrpcMethod> MethodsOf(const google::protobuf::ServiceDescriptor& service) {
  std::vector<GrpcMethod> methods;
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    GrpcType type = GrpcType::kUnary;
    if (method.client_streaming() && method.server_streaming()) {
      type = GrpcType::kBidiStream;
    } else if (method.client_streaming()) {
      type = GrpcType::kClientStream;
    } else if (method.server_streaming()) {
      type = GrpcType::kServerStream;
    }
    methods.push_back(GrpcMethod{service.full_name(), method.name(), type});
  }
  return methods;
}

absl::StatusOr<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
NewGrpcServerMetrics(std::shared_ptr<prometheus::Registry> registry,
                     const std::vector<GrpcMethod>& methods) {
  auto table = std::make_shared<MethodTable>();
  table->registry = registry;
  try {
    auto& started = prometheus::BuildCounter()
                        .Name("grpc_server_started_total")
                        .Help("Total number of RPCs started on the server.")
                        .Register(*registry);
    auto& handled = prometheus::BuildCounter()
                        .Name("grpc_server_handled_total")
                        .Help(
                            "Total number of RPCs completed on the server, regardless of "
                            "success or failure.")
                        .Register(*registry);
    auto& handling_seconds =
        prometheus::BuildHistogram()
            .Name("grpc_server_handling_seconds")
            .Help(
                "Histogram of response latency (seconds) of gRPC that had been "
                "application-level handled by the server.")
            .Register(*registry);
    auto& msg_received = prometheus::BuildCounter()
                             .Name("grpc_server_msg_received_total")
                             .Help("Total number of RPC stream messages received on the server.")
                             .Register(*registry);
    auto& msg_sent = prometheus::BuildCounter()
                         .Name("grpc_server_msg_sent_total")
                         .Help("Total number of gRPC stream messages sent by the server.")
                         .Register(*registry);
    // The go-grpc-prometheus default buckets.
    const prometheus::Histogram::BucketBoundaries buckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                             0.5,   1,    2.5,   5,    10};

    for (const GrpcMethod& method : methods) {
      const prometheus::Labels labels = {{"grpc_type", TypeName(method.type)},
                                         {"grpc_service", method.service},
                                         {"grpc_method", method.method}};
      MethodMetrics metrics;
      metrics.started = &started.Add(labels);
      for (int code = 0; code < kCodeCount; ++code) {
        prometheus::Labels with_code = labels;
        with_code["grpc_code"] = GrpcCodeName(static_cast<grpc::StatusCode>(code));
        metrics.handled[code] = &handled.Add(with_code);
      }
      metrics.handling_seconds = &handling_seconds.Add(labels, buckets);
      metrics.msg_received = &msg_received.Add(labels);
      metrics.msg_sent = &msg_sent.Add(labels);
      table->by_path.emplace(absl::StrCat("/", method.service, "/", method.method), metrics);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot register the grpc_server_* metrics: ", e.what()));
  }
  return std::make_unique<MetricsInterceptorFactory>(std::move(table));
}

}  // namespace eofaas::common
