// QueuedWriter behind a real gRPC server on loopback: what a watching client receives when the
// stream is closed, when it begins with a long backlog, and when it falls too far behind. Each
// test fills the writer inside the RPC's handler, where gRPC holds a write started until the
// handler returns: the first message written stays in flight while the others are pushed.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "control/api/stream_writer.h"
#include "eofaas/v1/endpoints.grpc.pb.h"

namespace eofaas::control {
namespace {

using Writer = QueuedWriter<eofaas::v1::WatchEndpointsResponse>;

constexpr size_t kMaxQueued = 3;

eofaas::v1::WatchEndpointsResponse Change(const std::string& function) {
  eofaas::v1::WatchEndpointsResponse change;
  change.add_functions()->set_function(function);
  return change;
}

// Every WatchEndpoints call gets a writer of kMaxQueued messages that `feed` fills; `fed` is set
// once it returns.
class FedEndpoints final : public eofaas::v1::Endpoints::CallbackService {
 public:
  explicit FedEndpoints(std::function<void(Writer&)> feed) : feed_(std::move(feed)) {}

  grpc::ServerWriteReactor<eofaas::v1::WatchEndpointsResponse>* WatchEndpoints(
      grpc::CallbackServerContext*, const eofaas::v1::WatchEndpointsRequest*) override {
    auto* writer = new Writer(kMaxQueued);
    feed_(*writer);
    fed.set_value();
    return writer;
  }

  std::promise<void> fed;

 private:
  std::function<void(Writer&)> feed_;
};

struct Watched {
  std::vector<std::string> functions;  // the function of each message, in order
  grpc::Status status;
};

// Serves `feed` on loopback and reads one whole watch stream once `feed` is done.
Watched Watch(std::function<void(Writer&)> feed) {
  FedEndpoints service(std::move(feed));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto endpoints = eofaas::v1::Endpoints::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  Watched watched;
  auto reader = endpoints->WatchEndpoints(&context, {});
  service.fed.get_future().wait();
  for (eofaas::v1::WatchEndpointsResponse change; reader->Read(&change);) {
    watched.functions.push_back(change.functions(0).function());
  }
  watched.status = reader->Finish();
  server->Shutdown();
  return watched;
}

TEST(QueuedWriterTest, WritesWhatIsQueuedInOrderThenTheStatus) {
  const Watched watched = Watch([](Writer& writer) {
    writer.Start();
    for (const char* function : {"a", "b"}) writer.Push(Change(function));
    writer.Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
    writer.Push(Change("c"));  // after Close: dropped
  });
  EXPECT_EQ(watched.functions, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(watched.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(watched.status.error_message(), "shutting down");
}

// What is queued before Start is the state the watch begins with (GetBuildLog's log so far can be
// long): all of it is written, however long.
TEST(QueuedWriterTest, TheBacklogBeforeStartIsWrittenWhole) {
  std::vector<std::string> backlog;
  for (size_t i = 0; i < 5 * kMaxQueued; ++i) backlog.push_back("f" + std::to_string(i));
  const Watched watched = Watch([&](Writer& writer) {
    for (const std::string& function : backlog) writer.Push(Change(function));
    writer.Close(grpc::Status::OK);
    writer.Start();
  });
  EXPECT_EQ(watched.functions, backlog);
  EXPECT_TRUE(watched.status.ok()) << watched.status.error_message();
}

// A client that falls kMaxQueued messages behind is told so at once: the messages it has not got,
// but the one being written, are dropped rather than kept for it until it reads them.
TEST(QueuedWriterTest, AnOverflowDropsWhatIsQueuedAndEndsTheStream) {
  const Watched watched = Watch([](Writer& writer) {
    writer.Start();
    writer.Push(Change("written"));  // in flight until the handler returns
    for (const char* function : {"b", "c"}) writer.Push(Change(function));
    writer.Push(Change("d"));  // the fourth message queued: over kMaxQueued
    writer.Push(Change("e"));  // the stream is closing: ignored
  });
  EXPECT_EQ(watched.functions, (std::vector<std::string>{"written"}));
  EXPECT_EQ(watched.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(watched.status.error_message(), "the client reads too slowly: stream ended");
}

}  // namespace
}  // namespace eofaas::control
