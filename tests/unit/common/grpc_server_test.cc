// GrpcServer and MetricsServer over real loopback connections: health, reflection, the
// go-grpc-prometheus series, bind errors and the shutdown signal wait.
#include "common/grpc_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics/metrics_server.h"
#include "eofaas/v1/provision.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "tests/support/grpc_health.h"

namespace eofaas::common {
namespace {

using ::eofaas::tests::HealthCheck;
using ::testing::HasSubstr;
using ::testing::Not;

// GetFunction finds nothing and ListTemplates lists nothing; every other method keeps the
// generated UNIMPLEMENTED.
class FakeProvision final : public eofaas::v1::Provision::CallbackService {
  grpc::ServerUnaryReactor* GetFunction(grpc::CallbackServerContext* context,
                                        const eofaas::v1::GetFunctionRequest* request,
                                        eofaas::v1::GetFunctionResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("function \"", request->name(), "\" not found")));
    return reactor;
  }
  grpc::ServerUnaryReactor* ListTemplates(grpc::CallbackServerContext* context,
                                          const eofaas::v1::ListTemplatesRequest* request,
                                          eofaas::v1::ListTemplatesResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(5);
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// The service names a grpc.reflection.v1alpha list_services request returns.
std::vector<std::string> ReflectionServices(const std::shared_ptr<grpc::Channel>& channel) {
  const google::protobuf::DescriptorPool* pool = google::protobuf::DescriptorPool::generated_pool();
  const google::protobuf::Descriptor* request_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest");
  const google::protobuf::Descriptor* response_type =
      pool->FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse");
  if (request_type == nullptr || response_type == nullptr) {
    ADD_FAILURE() << "reflection messages missing from the generated pool";
    return {};
  }
  google::protobuf::MessageFactory* factory = google::protobuf::MessageFactory::generated_factory();
  std::unique_ptr<google::protobuf::Message> request(factory->GetPrototype(request_type)->New());
  request->GetReflection()->SetString(request.get(), request_type->FindFieldByName("list_services"),
                                      "");

  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(Deadline());
  grpc::CompletionQueue cq;
  auto next = [&cq]() {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok;
  };
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(nullptr);
  EXPECT_TRUE(next());
  call->Write(ToBuffer(request->SerializeAsString()), nullptr);
  EXPECT_TRUE(next());
  call->WritesDone(nullptr);
  EXPECT_TRUE(next());
  grpc::ByteBuffer response_buffer;
  call->Read(&response_buffer, nullptr);
  EXPECT_TRUE(next());
  grpc::Status status;
  call->Finish(&status, nullptr);
  EXPECT_TRUE(next());
  EXPECT_TRUE(status.ok()) << status.error_message();

  std::unique_ptr<google::protobuf::Message> response(factory->GetPrototype(response_type)->New());
  EXPECT_TRUE(response->ParseFromString(FromBuffer(response_buffer)));
  const google::protobuf::Message& list = response->GetReflection()->GetMessage(
      *response, response_type->FindFieldByName("list_services_response"));
  const google::protobuf::FieldDescriptor* service_field =
      list.GetDescriptor()->FindFieldByName("service");
  std::vector<std::string> names;
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
    const google::protobuf::Message& service =
        list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    names.push_back(service.GetReflection()->GetString(
        service, service.GetDescriptor()->FindFieldByName("name")));
  }
  return names;
}

// GET `path` over HTTP/1.0 on 127.0.0.1:`port`; the whole response, headers included.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return "";
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  (void)write(fd, request.data(), request.size());
  std::string response;
  char chunk[4096];
  for (ssize_t n; (n = read(fd, chunk, sizeof(chunk))) > 0;) response.append(chunk, n);
  close(fd);
  return response;
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_shared<prometheus::Registry>();
    auto server = GrpcServer::Start(
        GrpcServerConfig{
            .listen = "127.0.0.1:0", .registry = registry_, .shutdown_grace = absl::Seconds(1)},
        {{&provision_, eofaas::v1::Provision::service_full_name()}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  FakeProvision provision_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcServerTest, HealthFollowsSetServing) {
  constexpr int kServing = 1;
  constexpr int kNotServing = 2;
  EXPECT_EQ(HealthCheck(channel_, ""), kNotServing);
  EXPECT_EQ(HealthCheck(channel_, "eofaas.v1.Provision"), kNotServing);
  server_->SetServing(true);
  EXPECT_EQ(HealthCheck(channel_, ""), kServing);
  EXPECT_EQ(HealthCheck(channel_, "eofaas.v1.Provision"), kServing);
  server_->SetServing(false);
  EXPECT_EQ(HealthCheck(channel_, ""), kNotServing);
}

TEST_F(GrpcServerTest, ReflectionListsServices) {
  std::vector<std::string> services = ReflectionServices(channel_);
  EXPECT_THAT(services, testing::Contains("eofaas.v1.Provision"));
  EXPECT_THAT(services, testing::Contains("grpc.health.v1.Health"));
}

TEST_F(GrpcServerTest, MetricsCountRpcsWithGoGrpcPrometheusNames) {
  auto metrics = MetricsServer::Create("127.0.0.1:0", registry_);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);

  auto stub = eofaas::v1::Provision::NewStub(channel_);
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    eofaas::v1::GetFunctionRequest request;
    request.set_name("absent");
    eofaas::v1::GetFunctionResponse response;
    grpc::Status status = stub->GetFunction(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    eofaas::v1::ListTemplatesResponse response;
    EXPECT_TRUE(stub->ListTemplates(&context, {}, &response).ok());
  }
  {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    eofaas::v1::CreateFunctionResponse response;
    EXPECT_EQ(stub->CreateFunction(&context, {}, &response).error_code(),
              grpc::StatusCode::UNIMPLEMENTED);
  }
  EXPECT_EQ(HealthCheck(channel_, ""), 2);

  std::string text = HttpGet((*metrics)->port(), "/metrics");
  EXPECT_THAT(text, HasSubstr("200 OK"));
  const std::string get = R"(grpc_method="GetFunction",grpc_service="eofaas.v1.Provision",)"
                          R"(grpc_type="unary"})";
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_started_total{", get, " 1\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_handled_total{grpc_code=\"NotFound\",", get,
                                           " 1\n")));
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("grpc_server_handled_total{grpc_code=\"OK\",", get, " 0\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{", get, " 1\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_msg_received_total{", get, " 1\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("grpc_server_msg_sent_total{", get, " 0\n")));
  EXPECT_THAT(text, HasSubstr("grpc_server_handling_seconds_bucket{" +
                              get.substr(0, get.size() - 1) + ",le=\"0.005\"}"));

  EXPECT_THAT(text, HasSubstr(R"(grpc_server_handled_total{grpc_code="OK",)"
                              R"(grpc_method="ListTemplates",grpc_service="eofaas.v1.Provision",)"
                              R"(grpc_type="unary"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(grpc_server_msg_sent_total{grpc_method="ListTemplates",)"
                              R"(grpc_service="eofaas.v1.Provision",grpc_type="unary"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(grpc_server_handled_total{grpc_code="Unimplemented",)"
                              R"(grpc_method="CreateFunction",grpc_service="eofaas.v1.Provision",)"
                              R"(grpc_type="unary"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(grpc_server_handled_total{grpc_code="OK",grpc_method="Check",)"
                              R"(grpc_service="grpc.health.v1.Health",grpc_type="unary"} 1)"));

  // Pre-initialised to zero: methods never called, every code, every type.
  EXPECT_THAT(text, HasSubstr(R"(grpc_server_started_total{grpc_method="DeleteFunction",)"
                              R"(grpc_service="eofaas.v1.Provision",grpc_type="unary"} 0)"));
  EXPECT_THAT(text, HasSubstr(R"(grpc_server_handled_total{grpc_code="Unauthenticated",)"
                              R"(grpc_method="WatchFunction",grpc_service="eofaas.v1.Provision",)"
                              R"(grpc_type="server_stream"} 0)"));
  EXPECT_THAT(text, HasSubstr(R"(grpc_server_started_total{grpc_method="ServerReflectionInfo",)"
                              R"(grpc_service="grpc.reflection.v1alpha.ServerReflection",)"
                              R"(grpc_type="bidi_stream"} 0)"));
  EXPECT_THAT(text,
              HasSubstr(R"(grpc_server_started_total{grpc_method="Watch",)"
                        R"(grpc_service="grpc.health.v1.Health",grpc_type="server_stream"} 0)"));
}

TEST_F(GrpcServerTest, ShutdownIsIdempotent) {
  server_->Shutdown();
  server_->Shutdown();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  eofaas::v1::ListTemplatesResponse response;
  EXPECT_FALSE(
      eofaas::v1::Provision::NewStub(channel_)->ListTemplates(&context, {}, &response).ok());
}

TEST_F(GrpcServerTest, PortInUseIsUnavailableAndNamesTheAddress) {
  std::string address = absl::StrCat("127.0.0.1:", server_->port());
  auto second = GrpcServer::Start(GrpcServerConfig{.listen = address, .registry = nullptr}, {});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(address));
}

TEST(GrpcServerStartTest, UnknownServiceNameIsInvalidArgument) {
  FakeProvision provision;
  auto server = GrpcServer::Start(GrpcServerConfig{.listen = "127.0.0.1:0", .registry = nullptr},
                                  {{&provision, "eofaas.v1.Nope"}});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("eofaas.v1.Nope"));
}

TEST(MetricsServerTest, PortInUseIsUnavailableAndNamesTheAddress) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = MetricsServer::Create("127.0.0.1:0", registry);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string address = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = MetricsServer::Create(address, registry);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), HasSubstr(address));
  EXPECT_THAT(HttpGet((*first)->port(), "/metrics"), Not(HasSubstr("grpc_server_started_total")));
}

TEST(ShutdownSignalTest, WaitReturnsTheBlockedSignal) {
  sigset_t old_mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &old_mask);
  BlockShutdownSignals();
  pthread_kill(pthread_self(), SIGTERM);  // pending for this thread until waited for
  EXPECT_EQ(WaitForShutdownSignal(), SIGTERM);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
}

}  // namespace
}  // namespace eofaas::common
