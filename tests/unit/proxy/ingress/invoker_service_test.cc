// InvokerService over a fake dispatcher, served in-process on a loopback port: request
// validation, the translation of outcomes, and the Map's window, order, backpressure and
// cancellation.
#include "proxy/ingress/invoker_service.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_server.h"
#include "proxy/ingress/map_reactor.h"
#include "proxy/plan/file_lister.h"
#include "tests/support/temp_dir.h"
#include "tests/unit/proxy/ingress/fake_dispatcher.h"

namespace eofaas::proxy {
namespace {

using namespace std::chrono_literals;
using eofaas::v1::InvokeRequest;
using eofaas::v1::InvokeResponse;
using eofaas::v1::MapRequest;
using eofaas::v1::MapResponse;
using SteadyClock = std::chrono::steady_clock;

bool Eventually(const std::function<bool()>& condition) {
  for (int i = 0; i < 500; ++i) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

// The cursor offset an invocation's body names.
int64_t OffsetOf(const Invocation& invocation) {
  static const std::regex offset(R"re("offset":"(\d+)")re");
  std::smatch match;
  int64_t value = 0;
  if (std::regex_search(invocation.body_prefix, match, offset)) {
    EXPECT_TRUE(absl::SimpleAtoi(match[1].str(), &value));
  }
  return value;
}

InvokeOutcome Result(std::string result) {
  InvokeOutcome outcome;
  outcome.result = std::move(result);
  outcome.replica = "127.0.0.1:9001";
  outcome.attempts = 1;
  outcome.duration = 3ms;
  return outcome;
}

InvokeOutcome Failure(absl::Status status, int attempts = 1) {
  InvokeOutcome outcome;
  outcome.status = std::move(status);
  outcome.attempts = attempts;
  return outcome;
}

class InvokerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_.Update("f", {{"127.0.0.1:9001", 4, 1}}); }

  // `http` lists http(s) inputs, when given.
  void Start(IngressOptions options = {}, const Lister* http = nullptr) {
    auto roots = DataRoots::Create({dir_.path().string()});
    ASSERT_TRUE(roots.ok()) << roots.status();
    file_lister_ = std::make_unique<FileLister>(*roots);
    ingress_ = std::make_unique<Ingress>(
        fake_, *roots, Listers{.file = file_lister_.get(), .http = http}, metrics_, options);
    service_ = std::make_unique<InvokerService>(ingress_->services());
    auto server = common::GrpcServer::Start(
        {.listen = "127.0.0.1:0", .registry = grpc_registry_, .shutdown_grace = absl::Seconds(1)},
        {{service_.get(), "eofaas.v1.Invoker"}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // Small flow-control windows, so that the transport buffers little of a stream and the
    // proxy's own bound shows.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 16 << 20);
    args.SetInt("grpc.http2.lookahead_bytes", 16 << 10);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                             grpc::InsecureChannelCredentials(), args);
    stub_ = eofaas::v1::Invoker::NewStub(channel);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // A file of `size` bytes in the data root; its file:// URI.
  std::string File(const std::string& name, size_t size) {
    dir_.Write(name, std::string(size, 'x'));
    return absl::StrCat("file://", dir_ / name);
  }

  InvokeRequest Request(const std::string& uri) {
    InvokeRequest request;
    request.set_function("f");
    request.mutable_cursor()->set_uri(uri);
    return request;
  }

  grpc::Status Invoke(const InvokeRequest& request, InvokeResponse& response,
                      std::chrono::seconds timeout = 10s) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    return stub_->Invoke(&context, request, &response);
  }

  struct MapRun {
    grpc::Status status;
    std::vector<MapResponse> events;
    // The items of every `items` event, in the order they came.
    std::vector<eofaas::v1::MapItem> items;
  };
  MapRun Map(const MapRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 30s);
    auto reader = stub_->Map(&context, request);
    MapRun run;
    MapResponse event;
    while (reader->Read(&event)) {
      if (event.has_items()) {
        EXPECT_GT(event.items().items_size(), 0) << "an items event without items";
        for (const auto& item : event.items().items()) run.items.push_back(item);
      }
      run.events.push_back(event);
    }
    run.status = reader->Finish();
    if (run.status.ok()) CheckShape(run);
    return run;
  }
  // planned, then items only, then done.
  static void CheckShape(const MapRun& run) {
    ASSERT_GE(run.events.size(), 2u);
    EXPECT_TRUE(run.events.front().has_planned());
    EXPECT_TRUE(run.events.back().has_done());
    for (size_t i = 1; i + 1 < run.events.size(); ++i) EXPECT_TRUE(run.events[i].has_items()) << i;
  }
  // Runs the Map on another thread, while the test completes the fake's invocations.
  std::future<MapRun> MapAsync(const MapRequest& request) {
    return std::async(std::launch::async, [this, request] { return Map(request); });
  }

  MapRequest Chunks(const std::string& uri, int64_t chunk_bytes) {
    MapRequest request;
    request.set_function("f");
    request.add_inputs(uri);
    request.mutable_partitioning()->set_chunk_bytes(chunk_bytes);
    return request;
  }

  // A counter of the ingress's metrics, or of the server's grpc_server_* ones; -1 when absent.
  double Metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    std::vector<prometheus::MetricFamily> families = registry_.Collect();
    for (auto& family : grpc_registry_->Collect()) families.push_back(std::move(family));
    for (const auto& family : families) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> have;
        for (const auto& label : metric.label) have[label.name] = label.value;
        if (have == labels) return metric.counter.value;
      }
    }
    return -1;
  }

  tests::TempDir dir_;
  prometheus::Registry registry_;
  IngressMetrics metrics_{registry_};
  std::shared_ptr<prometheus::Registry> grpc_registry_ = std::make_shared<prometheus::Registry>();
  tests::FakeDispatcher fake_;
  std::unique_ptr<FileLister> file_lister_;
  std::unique_ptr<Ingress> ingress_;
  std::unique_ptr<InvokerService> service_;
  std::unique_ptr<common::GrpcServer> server_;
  std::unique_ptr<eofaas::v1::Invoker::Stub> stub_;
};

TEST_F(InvokerServiceTest, InvokeDispatchesTheCursorAndReturnsTheResult) {
  Start();
  InvokeOutcome answer = Result(std::string("\x00\x01 bytes\xff", 9));
  answer.attempts = 2;
  answer.duration = 1500ms;
  fake_.SetResponder([&](const Invocation&) { return answer; });
  InvokeRequest request = Request(File("in.txt", 100));
  request.mutable_cursor()->set_length(50);
  (*request.mutable_args()->mutable_fields())["threshold"].set_number_value(0.5);
  request.mutable_timeout()->set_seconds(2);
  const auto before = SteadyClock::now();
  InvokeResponse response;
  grpc::Status status = Invoke(request, response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.result(), answer.result);
  EXPECT_EQ(response.replica(), "127.0.0.1:9001");
  EXPECT_EQ(response.attempts(), 2);
  EXPECT_EQ(response.duration().seconds(), 1);
  EXPECT_EQ(response.duration().nanos(), 500'000'000);

  auto received = fake_.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].function, "f");
  const Invocation& invocation = received[0].invocation;
  EXPECT_TRUE(std::regex_match(
      invocation.body_prefix,
      std::regex(absl::StrCat(R"(\{"id":"[0-9a-f]{32}","cursor":\{"uri":")", request.cursor().uri(),
                              R"(","length":"50"\},"args":\{"threshold":0\.5\})"))))
      << invocation.body_prefix;
  EXPECT_EQ(invocation.max_attempts, 3);
  EXPECT_NE(invocation.group, nullptr);
  // The request's timeout is shorter than the caller's deadline.
  EXPECT_GE(invocation.deadline, before + 1900ms);
  EXPECT_LE(invocation.deadline, SteadyClock::now() + 2s);
  EXPECT_EQ(Metric("eofaas_proxy_invocations_total", {{"function", "f"}, {"outcome", "success"}}),
            1);
}

TEST_F(InvokerServiceTest, InvokeDeadlineIsTheCallersOrTheDefault) {
  Start({.default_timeout = absl::Seconds(42)});
  fake_.SetResponder([](const Invocation&) { return Result("{}"); });
  InvokeResponse response;
  // No timeout: the caller's deadline.
  const auto before = SteadyClock::now();
  ASSERT_TRUE(Invoke(Request("http://data.example/x"), response, 3s).ok());
  // A timeout longer than the caller's deadline does not extend it.
  InvokeRequest longer = Request("http://data.example/x");
  longer.mutable_timeout()->set_seconds(60);
  ASSERT_TRUE(Invoke(longer, response, 3s).ok());
  // No deadline at all: the default.
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->Invoke(&context, Request("http://data.example/x"), &response).ok());
  auto received = fake_.received();
  ASSERT_EQ(received.size(), 3u);
  // gRPC rounds up the timeout it sends.
  for (int i : {0, 1}) {
    EXPECT_GE(received[i].invocation.deadline, before + 2900ms);
    EXPECT_LE(received[i].invocation.deadline, SteadyClock::now() + 3200ms);
  }
  EXPECT_GE(received[2].invocation.deadline, before + 41s);
  EXPECT_LE(received[2].invocation.deadline, SteadyClock::now() + 42s);
}

TEST_F(InvokerServiceTest, FunctionErrorIsASuccessfulCall) {
  Start();
  fake_.SetResponder([](const Invocation&) {
    InvokeOutcome outcome = Result("");
    outcome.error = FunctionError{.type = "ValueError", .message = "bad band", .handled = false};
    return outcome;
  });
  InvokeResponse response;
  grpc::Status status = Invoke(Request(File("in.txt", 10)), response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outcome_case(), InvokeResponse::kError);
  EXPECT_EQ(response.error().type(), "ValueError");
  EXPECT_EQ(response.error().message(), "bad band");
  EXPECT_FALSE(response.error().handled());
  EXPECT_EQ(response.replica(), "127.0.0.1:9001");
  EXPECT_EQ(
      Metric("eofaas_proxy_invocations_total", {{"function", "f"}, {"outcome", "function_error"}}),
      1);
}

TEST_F(InvokerServiceTest, DispatchFailuresBecomeTheirStatus) {
  Start();
  for (const absl::Status& failure : {absl::UnavailableError("no replica of function f is up"),
                                      absl::DeadlineExceededError("deadline exceeded"),
                                      absl::ResourceExhaustedError("queue full"),
                                      absl::NotFoundError("function f was removed")}) {
    fake_.SetResponder([&](const Invocation&) { return Failure(failure, 2); });
    InvokeResponse response;
    grpc::Status status = Invoke(Request(File("in.txt", 10)), response);
    EXPECT_EQ(static_cast<int>(status.error_code()), static_cast<int>(failure.code()));
    EXPECT_EQ(status.error_message(), failure.message());
  }
  EXPECT_EQ(Metric("eofaas_proxy_invocations_total", {{"function", "f"}, {"outcome", "failure"}}),
            4);
}

TEST_F(InvokerServiceTest, BadInvokeRequestsAreRejectedBeforeDispatch) {
  Start();
  fake_.SetResponder([](const Invocation&) { return Result("{}"); });
  const std::string good = File("in.txt", 10);
  struct Case {
    InvokeRequest request;
    grpc::StatusCode code;
    std::string prefix;
  };
  std::vector<Case> cases;
  cases.push_back({Request(good), grpc::StatusCode::NOT_FOUND, "unknown"});
  cases.back().request.set_function("missing");
  cases.push_back({Request(good), grpc::StatusCode::INVALID_ARGUMENT, "function:"});
  cases.back().request.set_function("");
  cases.push_back({Request(good), grpc::StatusCode::INVALID_ARGUMENT, "function:"});
  cases.back().request.set_function("Upper_Case");
  cases.push_back({Request(good), grpc::StatusCode::INVALID_ARGUMENT, "timeout:"});
  cases.back().request.mutable_timeout()->set_seconds(-3);
  cases.push_back({Request(good), grpc::StatusCode::INVALID_ARGUMENT, "timeout:"});
  cases.back().request.mutable_timeout()->set_nanos(2'000'000'000);
  cases.push_back({Request(good), grpc::StatusCode::INVALID_ARGUMENT, "cursor.offset"});
  cases.back().request.mutable_cursor()->set_offset(-1);
  cases.push_back({Request(""), grpc::StatusCode::INVALID_ARGUMENT, "cursor.uri"});
  cases.push_back({Request("file:///etc/hostname"), grpc::StatusCode::PERMISSION_DENIED, ""});
  cases.push_back({Request(absl::StrCat("file://", dir_ / "../../../etc/hostname")),
                   grpc::StatusCode::PERMISSION_DENIED, ""});
  cases.push_back(
      {Request(absl::StrCat("file://", dir_ / "absent.txt")), grpc::StatusCode::NOT_FOUND, ""});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request.ShortDebugString());
    InvokeResponse response;
    grpc::Status status = Invoke(c.request, response);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_TRUE(absl::StartsWith(status.error_message(), c.prefix)) << status.error_message();
  }
  EXPECT_EQ(fake_.received_count(), 0u);
  // No series for names the dispatcher never knew.
  EXPECT_EQ(
      Metric("eofaas_proxy_invocations_total", {{"function", "missing"}, {"outcome", "failure"}}),
      -1);
}

TEST_F(InvokerServiceTest, CancelledInvokeCancelsItsInvocation) {
  Start();
  grpc::ClientContext context;
  const InvokeRequest request = Request(File("in.txt", 10));
  InvokeResponse response;
  std::promise<grpc::Status> result;
  stub_->async()->Invoke(&context, &request, &response,
                         [&](grpc::Status status) { result.set_value(status); });
  ASSERT_TRUE(Eventually([&] { return fake_.outstanding() == 1; }));
  context.TryCancel();
  EXPECT_EQ(result.get_future().get().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return fake_.cancelled() == 1 && fake_.outstanding() == 0; }));
}

TEST_F(InvokerServiceTest, MapStreamsPlannedThenEveryItemThenDone) {
  Start();
  // Offsets 0-9: even ones succeed, 1, 5 and 9 are function errors, 3 and 7 cannot run.
  fake_.SetResponder([](const Invocation& invocation) {
    const int64_t offset = OffsetOf(invocation);
    if (offset % 2 == 0) {
      InvokeOutcome outcome = Result(absl::StrCat("r", offset));
      outcome.attempts = offset == 4 ? 2 : 1;
      return outcome;
    }
    if (offset % 4 == 3) return Failure(absl::UnavailableError("replica gone"), 3);
    InvokeOutcome outcome = Result("");
    outcome.error = FunctionError{.type = "E", .message = "m", .handled = true};
    return outcome;
  });
  MapRequest request = Chunks(File("ten.bin", 10), 1);
  request.set_max_attempts(5);
  MapRun run = Map(request);
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_EQ(run.items.size(), 10u);
  ASSERT_TRUE(run.events[0].has_planned());
  EXPECT_EQ(run.events[0].planned().items(), 10);
  EXPECT_EQ(run.events[0].planned().bytes(), 10);
  std::set<int64_t> indexes;
  for (const eofaas::v1::MapItem& item : run.items) {
    indexes.insert(item.index());
    EXPECT_EQ(item.cursor().offset(), item.index());
    EXPECT_EQ(item.cursor().length(), 1);
    EXPECT_EQ(item.cursor().parts(), 10);
    if (item.index() % 2 == 0) {
      EXPECT_EQ(item.result(), absl::StrCat("r", item.index()));
      EXPECT_EQ(item.replica(), "127.0.0.1:9001");
    } else if (item.index() % 4 == 3) {
      EXPECT_EQ(item.failure().code(), "UNAVAILABLE");
      EXPECT_EQ(item.failure().message(), "replica gone");
      EXPECT_EQ(item.attempts(), 3);
    } else {
      EXPECT_EQ(item.error().type(), "E");
      EXPECT_TRUE(item.error().handled());
    }
  }
  EXPECT_EQ(indexes.size(), 10u);
  ASSERT_TRUE(run.events.back().has_done());
  EXPECT_EQ(run.events.back().done().succeeded(), 5);
  EXPECT_EQ(run.events.back().done().failed(), 5);
  EXPECT_EQ(run.events.back().done().retried(), 3);  // offset 4, then 3 and 7

  // Each item has its own id within the Map; max_attempts reaches the dispatcher.
  std::set<std::string> ids;
  static const std::regex id(R"re(^\{"id":"([0-9a-f]{32})-(\d+)")re");
  std::string map_id;
  for (const auto& received : fake_.received()) {
    std::smatch match;
    ASSERT_TRUE(std::regex_search(received.invocation.body_prefix, match, id))
        << received.invocation.body_prefix;
    if (map_id.empty()) map_id = match[1].str();
    EXPECT_EQ(match[1].str(), map_id);
    ids.insert(match[2].str());
    EXPECT_EQ(received.invocation.max_attempts, 5);
  }
  EXPECT_EQ(ids.size(), 10u);
  EXPECT_EQ(Metric("eofaas_proxy_map_items_total", {{"outcome", "success"}}), 5);
  EXPECT_EQ(Metric("eofaas_proxy_map_items_total", {{"outcome", "function_error"}}), 3);
  EXPECT_EQ(Metric("eofaas_proxy_map_items_total", {{"outcome", "failure"}}), 2);
}

TEST_F(InvokerServiceTest, MapKeepsAtMostMaxInFlight) {
  Start();
  MapRequest request = Chunks(File("data.bin", 20), 1);
  request.set_max_in_flight(3);
  std::future<MapRun> run = MapAsync(request);
  for (int completed = 0; completed < 20; ++completed) {
    ASSERT_TRUE(Eventually([&] { return !fake_.held().empty(); }));
    // Whatever the timing, never more than three at once.
    std::this_thread::sleep_for(completed < 3 ? 50ms : 1ms);
    EXPECT_LE(fake_.outstanding(), 3);
    fake_.Complete(fake_.held().front(), Result("{}"));
  }
  MapRun result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.items.size(), 20u);
  EXPECT_EQ(fake_.max_outstanding(), 3);
}

TEST_F(InvokerServiceTest, MapWithoutMaxInFlightUsesTheFunctionsCapacity) {
  Start();
  fake_.Update("f", {{"127.0.0.1:9001", 4, 1}, {"127.0.0.1:9002", 2, 1}});
  std::future<MapRun> run = MapAsync(Chunks(File("data.bin", 30), 1));
  ASSERT_TRUE(Eventually([&] { return fake_.outstanding() == 6; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(fake_.received_count(), 6u);
  // The capacity follows the replicas.
  fake_.Update("f", {{"127.0.0.1:9001", 4, 1}});
  fake_.SetResponder([](const Invocation&) { return Result("{}"); });
  for (size_t id : fake_.held()) fake_.Complete(id, Result("{}"));
  MapRun result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.events.back().done().succeeded(), 30);
}

TEST_F(InvokerServiceTest, OrderedMapDeliversItemsInIndexOrder) {
  Start();
  MapRequest request = Chunks(File("data.bin", 12), 1);
  request.set_max_in_flight(4);
  request.set_ordered(true);
  std::future<MapRun> run = MapAsync(request);
  // Complete each window of four backwards.
  for (int window = 0; window < 3; ++window) {
    ASSERT_TRUE(Eventually([&] { return fake_.held().size() == 4; })) << window;
    std::vector<size_t> held = fake_.held();
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      fake_.Complete(*it, Result(absl::StrCat("r", *it)));
      // A later index done first does not open the window: the earliest is still missing.
      std::this_thread::sleep_for(5ms);
      if (it + 1 != held.rend()) {
        EXPECT_EQ(fake_.received_count(), static_cast<size_t>(window * 4 + 4));
      }
    }
  }
  MapRun result = run.get();
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.items.size(), 12u);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(result.items[i].index(), i);
    EXPECT_EQ(result.items[i].result(), absl::StrCat("r", i));
  }
}

TEST_F(InvokerServiceTest, MapPausesWhileTheClientDoesNotRead) {
  Start({.max_queued_items = 32});
  fake_.SetResponder([](const Invocation&) { return Result(std::string(100, 'r')); });
  constexpr int kItems = 100'000;
  MapRequest request = Chunks(File("data.bin", kItems), 1);
  grpc::ClientContext context;
  auto reader = stub_->Map(&context, request);
  MapResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_planned());
  // Without reading, dispatch stops once the event queue and the transport's window are full.
  // It has stopped once the count stayed the same over three looks in a row.
  size_t dispatched = 0;
  for (int i = 0, unchanged = 0; i < 100 && unchanged < 3; ++i) {
    std::this_thread::sleep_for(200ms);
    const size_t now = fake_.received_count();
    unchanged = now == dispatched && now > 0 ? unchanged + 1 : 0;
    dispatched = now;
  }
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(fake_.received_count(), dispatched) << "dispatch did not stop";
  EXPECT_GT(dispatched, 0u);
  EXPECT_LT(dispatched, 5000u);
  std::cerr << "dispatched while the client did not read: " << dispatched << "\n";
  // Reading again resumes it to the end.
  const auto start = SteadyClock::now();
  int items = 0;
  while (reader->Read(&event)) items += event.items().items_size();
  const std::chrono::duration<double> elapsed = SteadyClock::now() - start;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(items, kItems);
  EXPECT_EQ(event.done().succeeded(), kItems);
  std::cerr << kItems << " items streamed in " << elapsed.count() << " s ("
            << kItems / elapsed.count() << " items/s)\n";
}

TEST_F(InvokerServiceTest, ItemsThatCompleteTogetherShareAMessage) {
  Start();
  MapRequest request = Chunks(File("data.bin", 16), 1);
  request.set_max_in_flight(8);
  grpc::ClientContext context;
  auto reader = stub_->Map(&context, request);
  MapResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_planned());
  ASSERT_TRUE(Eventually([&] { return fake_.held().size() == 8; }));
  // One item while the stream is quiet goes out at once, without waiting for the others.
  fake_.Complete(fake_.held().front(), Result("r"));
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_EQ(event.items().items_size(), 1);
  EXPECT_EQ(event.items().items(0).index(), 0);
  // Eight that complete together travel in one message.
  ASSERT_TRUE(Eventually([&] { return fake_.held().size() == 8; }));
  fake_.CompleteAll(Result("r"));
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.items().items_size(), 8);
  // The last seven, likewise.
  ASSERT_TRUE(Eventually([&] { return fake_.held().size() == 7; }));
  fake_.CompleteAll(Result("r"));
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.items().items_size(), 7);
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.done().succeeded(), 16);
  EXPECT_FALSE(reader->Read(&event));
  ASSERT_TRUE(reader->Finish().ok());
}

TEST_F(InvokerServiceTest, MapMessagesStayWithinTheirBounds) {
  Start({.max_queued_items = 2000});
  // A thousand small items that complete together: two messages, the first one full.
  MapRequest request = Chunks(File("small.bin", 1000), 1);
  request.set_max_in_flight(1000);
  std::future<MapRun> run = MapAsync(request);
  ASSERT_TRUE(Eventually([&] { return fake_.held().size() == 1000; }));
  fake_.CompleteAll(Result("r"));
  MapRun small = run.get();
  ASSERT_TRUE(small.status.ok()) << small.status.error_message();
  EXPECT_EQ(small.items.size(), 1000u);
  ASSERT_EQ(small.events.size(), 4u);
  EXPECT_EQ(small.events[1].items().items_size(), static_cast<int>(MapReactor::kMaxMessageItems));
  EXPECT_EQ(small.events[2].items().items_size(),
            1000 - static_cast<int>(MapReactor::kMaxMessageItems));

  // Eight results of 300 KiB: three to a message (about 1 MiB at most).
  request = Chunks(File("large.bin", 8), 1);
  request.set_max_in_flight(8);
  run = MapAsync(request);
  ASSERT_TRUE(Eventually([&] { return fake_.held().size() == 8; }));
  fake_.CompleteAll(Result(std::string(300 << 10, 'x')));
  MapRun large = run.get();
  ASSERT_TRUE(large.status.ok()) << large.status.error_message();
  EXPECT_EQ(large.items.size(), 8u);
  ASSERT_EQ(large.events.size(), 5u);
  for (size_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(large.events[i].items().items_size(), i < 3 ? 3 : 2) << i;
    EXPECT_LE(large.events[i].ByteSizeLong(), MapReactor::kMaxMessageBytes + 1024) << i;
  }
}

// An http(s) lister that takes 200 ms per input and counts its calls.
class SlowHttpLister final : public Lister {
 public:
  absl::Status List(const DataUri& input, absl::string_view, const std::stop_token&,
                    ObjectList& out) const override {
    ++calls_;
    absl::SleepFor(absl::Milliseconds(200));
    out.Append(ListedObject{input.text, 10, "", true});
    return absl::OkStatus();
  }
  int calls() const { return calls_; }

 private:
  mutable std::atomic<int> calls_ = 0;
};

// A Map cancelled while its inputs are sized stops the sizing: no further input is listed.
TEST_F(InvokerServiceTest, CancelledMapStopsPlanning) {
  SlowHttpLister lister;
  Start({}, &lister);
  MapRequest request;
  request.set_function("f");
  for (int i = 0; i < 64; ++i) request.add_inputs(absl::StrCat("http://store.example/", i));
  grpc::ClientContext context;
  auto reader = stub_->Map(&context, request);
  ASSERT_TRUE(Eventually([&] { return lister.calls() > 0; }));
  context.TryCancel();
  MapResponse event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  absl::SleepFor(absl::Seconds(1));  // the whole sizing: 4 rounds of 16 inputs, 200 ms each
  EXPECT_LE(lister.calls(), 16);
  EXPECT_EQ(fake_.received_count(), 0u);
}

TEST_F(InvokerServiceTest, CancelledMapCancelsItsInvocationsAndStops) {
  Start();
  MapRequest request = Chunks(File("data.bin", 100), 1);
  request.set_max_in_flight(5);
  grpc::ClientContext context;
  auto reader = stub_->Map(&context, request);
  MapResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(Eventually([&] { return fake_.outstanding() == 5; }));
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return fake_.cancelled() == 5 && fake_.outstanding() == 0; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(fake_.received_count(), 5u);
  EXPECT_EQ(Metric("eofaas_proxy_map_items_total", {{"outcome", "cancelled"}}), 5);
}

// A Map whose deadline passes ends DEADLINE_EXCEEDED on the server's side too (its metrics), not
// CANCELLED as one the client cancels.
TEST_F(InvokerServiceTest, AMapPastItsDeadlineEndsDeadlineExceeded) {
  Start();
  MapRequest request = Chunks(File("data.bin", 10), 1);
  request.set_max_in_flight(2);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 500ms);
  auto reader = stub_->Map(&context, request);
  MapResponse event;
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const std::map<std::string, std::string> map_call = {{"grpc_method", "Map"},
                                                       {"grpc_service", "eofaas.v1.Invoker"},
                                                       {"grpc_type", "server_stream"}};
  auto handled = [&](const std::string& code) {
    std::map<std::string, std::string> labels = map_call;
    labels["grpc_code"] = code;
    return Metric("grpc_server_handled_total", labels);
  };
  EXPECT_TRUE(Eventually([&] { return handled("DeadlineExceeded") == 1; }));
  EXPECT_LE(handled("Canceled"), 0);
}

TEST_F(InvokerServiceTest, MapItemDeadlines) {
  Start({.default_timeout = absl::Seconds(42)});
  fake_.SetResponder([](const Invocation&) { return Result("{}"); });
  const std::string uri = File("data.bin", 1);
  const auto before = SteadyClock::now();
  // item_timeout, within the caller's deadline.
  MapRequest request = Chunks(uri, 1);
  request.mutable_item_timeout()->set_seconds(2);
  ASSERT_TRUE(Map(request).status.ok());
  // No item_timeout: the caller's deadline (30 s).
  ASSERT_TRUE(Map(Chunks(uri, 1)).status.ok());
  // Neither: the default.
  grpc::ClientContext context;
  auto reader = stub_->Map(&context, Chunks(uri, 1));
  MapResponse event;
  while (reader->Read(&event)) {
  }
  ASSERT_TRUE(reader->Finish().ok());
  auto received = fake_.received();
  ASSERT_EQ(received.size(), 3u);
  const auto after = SteadyClock::now();
  EXPECT_GE(received[0].invocation.deadline, before + 2s);
  EXPECT_LE(received[0].invocation.deadline, after + 2s);
  EXPECT_GE(received[1].invocation.deadline, before + 29s);
  EXPECT_LE(received[1].invocation.deadline, after + 30500ms);  // gRPC rounds up
  EXPECT_GE(received[2].invocation.deadline, before + 42s);
  EXPECT_LE(received[2].invocation.deadline, after + 42s);
}

TEST_F(InvokerServiceTest, BadMapRequestsEndBeforePlanned) {
  Start();
  const std::string good = File("data.bin", 10);
  struct Case {
    MapRequest request;
    grpc::StatusCode code;
    std::string prefix;
  };
  std::vector<Case> cases;
  cases.push_back({Chunks(good, 1), grpc::StatusCode::NOT_FOUND, "unknown"});
  cases.back().request.set_function("missing");
  cases.push_back({Chunks(good, 1), grpc::StatusCode::INVALID_ARGUMENT, "function:"});
  cases.back().request.set_function("-bad");
  cases.push_back(
      {Chunks(good, 0), grpc::StatusCode::INVALID_ARGUMENT, "partitioning.chunk_bytes:"});
  cases.push_back({Chunks(good, 1), grpc::StatusCode::INVALID_ARGUMENT, "inputs:"});
  cases.back().request.clear_inputs();
  cases.push_back({Chunks(good, 1), grpc::StatusCode::INVALID_ARGUMENT, "max_in_flight:"});
  cases.back().request.set_max_in_flight(-1);
  cases.push_back({Chunks(good, 1), grpc::StatusCode::INVALID_ARGUMENT, "max_in_flight:"});
  cases.back().request.set_max_in_flight(100'000);
  cases.push_back({Chunks(good, 1), grpc::StatusCode::INVALID_ARGUMENT, "max_attempts:"});
  cases.back().request.set_max_attempts(-2);
  cases.push_back({Chunks(good, 1), grpc::StatusCode::INVALID_ARGUMENT, "item_timeout:"});
  cases.back().request.mutable_item_timeout()->set_seconds(-1);
  cases.push_back({Chunks("file:///etc/", 1), grpc::StatusCode::PERMISSION_DENIED, "inputs[0]"});
  cases.push_back({Chunks(absl::StrCat("file://", dir_ / "absent"), 1), grpc::StatusCode::NOT_FOUND,
                   "inputs[0]"});
  cases.push_back({Chunks("http://data.example/x", 1), grpc::StatusCode::UNIMPLEMENTED,
                   "inputs[0]"});  // no http lister in this test
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request.ShortDebugString());
    MapRun run = Map(c.request);
    EXPECT_EQ(run.status.error_code(), c.code) << run.status.error_message();
    EXPECT_TRUE(absl::StartsWith(run.status.error_message(), c.prefix))
        << run.status.error_message();
    EXPECT_TRUE(run.events.empty());
  }
  EXPECT_EQ(fake_.received_count(), 0u);
}

// A Map refused at its start (here: an unknown function) whose client cancels at about the same
// time: the cancellation may reach the reactor after its refusal, which must stay its only end
// (a second Finish aborts the process).
TEST_F(InvokerServiceTest, RefusedMapsWhoseClientsCancelEndOnce) {
  Start();
  MapRequest request = Chunks(File("data.bin", 10), 1);
  request.set_function("missing");
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext context;
    auto reader = stub_->Map(&context, request);
    if (i % 2 == 0) context.TryCancel();
    MapResponse event;
    EXPECT_FALSE(reader->Read(&event));
    const grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.error_code() == grpc::StatusCode::NOT_FOUND ||
                status.error_code() == grpc::StatusCode::CANCELLED)
        << status.error_message();
  }
}

TEST_F(InvokerServiceTest, EmptyObjectIsStillOneItem) {
  Start();
  fake_.SetResponder([](const Invocation&) { return Result("{}"); });
  MapRun run = Map(Chunks(File("empty.bin", 0), 1));
  ASSERT_TRUE(run.status.ok()) << run.status.error_message();
  ASSERT_EQ(run.events.size(), 3u);
  EXPECT_EQ(run.events[0].planned().items(), 1);
  EXPECT_EQ(run.events[0].planned().bytes(), 0);
  ASSERT_EQ(run.items.size(), 1u);
  EXPECT_EQ(run.items[0].cursor().length(), 0);
  EXPECT_EQ(run.events[2].done().succeeded(), 1);
}

}  // namespace
}  // namespace eofaas::proxy
