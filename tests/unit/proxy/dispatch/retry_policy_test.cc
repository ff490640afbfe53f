#include "proxy/dispatch/retry_policy.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>

#include "tests/fakes/fake_clock.h"

namespace eofaas::proxy {
namespace {

using namespace std::chrono_literals;
using Kind = AttemptOutcome::Kind;
using Result = Balancer::Result;

HttpResult Response(int status, std::string body = "",
                    FunctionErrorHeader header = FunctionErrorHeader::kNone) {
  HttpResult result;
  result.response_started = true;
  result.status = status;
  result.body = std::move(body);
  result.function_error = header;
  return result;
}

HttpResult Failed(HttpError error) {
  HttpResult result;
  result.error = error;
  result.detail = boost::asio::error::connection_reset;
  return result;
}

TEST(ClassifyAttemptTest, SuccessIsTheResult) {
  auto outcome = ClassifyAttempt(Response(200, "bytes"), "r:1");
  EXPECT_EQ(outcome.kind, Kind::kResult);
  EXPECT_EQ(outcome.replica_result, Result::kSuccess);
}

TEST(ClassifyAttemptTest, FunctionErrorHeaderIsNeverRetried) {
  for (int status : {200, 500}) {
    auto outcome =
        ClassifyAttempt(Response(status, R"({"error":{"type":"ValueError","message":"bad"}})",
                                 FunctionErrorHeader::kUnhandled),
                        "r:1");
    EXPECT_EQ(outcome.kind, Kind::kFunctionError) << status;
    EXPECT_EQ(outcome.replica_result, Result::kSuccess);
  }
}

TEST(ClassifyAttemptTest, RetriedStatuses) {
  struct Case {
    int status;
    RetryReason reason;
    Result replica_result;
    absl::StatusCode code;
  };
  for (const Case& c : {
           Case{429, RetryReason::kTooManyRequests, Result::kNeutral,
                absl::StatusCode::kResourceExhausted},
           Case{503, RetryReason::kUnavailable, Result::kFailure, absl::StatusCode::kUnavailable},
           Case{500, RetryReason::kServerError, Result::kFailure, absl::StatusCode::kUnavailable},
           Case{502, RetryReason::kServerError, Result::kFailure, absl::StatusCode::kUnavailable},
           Case{504, RetryReason::kServerError, Result::kFailure, absl::StatusCode::kUnavailable},
       }) {
    auto outcome = ClassifyAttempt(
        Response(c.status, R"({"error":{"type":"Busy","message":"too many"}})"), "r:1");
    EXPECT_EQ(outcome.kind, Kind::kRetry) << c.status;
    EXPECT_EQ(outcome.reason, c.reason) << c.status;
    EXPECT_EQ(outcome.replica_result, c.replica_result) << c.status;
    EXPECT_EQ(outcome.status.code(), c.code) << c.status;
    EXPECT_NE(outcome.status.message().find("too many"), std::string::npos);
    EXPECT_NE(outcome.status.message().find("r:1"), std::string::npos);
  }
}

TEST(ClassifyAttemptTest, ClientErrorsAreFinal) {
  auto bad =
      ClassifyAttempt(Response(400, R"({"error":{"message":"cursor.uri: is required"}})"), "r:1");
  EXPECT_EQ(bad.kind, Kind::kFail);
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status.message().find("cursor.uri"), std::string::npos);
  auto not_found = ClassifyAttempt(Response(404, "no route"), "r:1");
  EXPECT_EQ(not_found.kind, Kind::kFail);
  EXPECT_EQ(not_found.status.code(), absl::StatusCode::kUnknown);
}

TEST(ClassifyAttemptTest, TransportFailures) {
  auto reset = ClassifyAttempt(Failed(HttpError::kClosed), "r:1");
  EXPECT_EQ(reset.kind, Kind::kRetry);
  EXPECT_EQ(reset.reason, RetryReason::kReset);
  EXPECT_EQ(reset.replica_result, Result::kFailure);
  EXPECT_EQ(reset.status.code(), absl::StatusCode::kUnavailable);

  auto protocol = ClassifyAttempt(Failed(HttpError::kProtocol), "r:1");
  EXPECT_EQ(protocol.reason, RetryReason::kProtocol);

  auto connect = ConnectFailure(boost::asio::error::connection_refused, "r:1");
  EXPECT_EQ(connect.kind, Kind::kRetry);
  EXPECT_EQ(connect.reason, RetryReason::kConnect);
  EXPECT_EQ(connect.replica_result, Result::kFailure);

  auto timeout = ClassifyAttempt(Failed(HttpError::kTimeout), "r:1");
  EXPECT_EQ(timeout.kind, Kind::kFail);
  EXPECT_EQ(timeout.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(timeout.replica_result, Result::kNeutral);

  auto large = ClassifyAttempt(Failed(HttpError::kBodyTooLarge), "r:1");
  EXPECT_EQ(large.kind, Kind::kFail);
  EXPECT_EQ(large.status.code(), absl::StatusCode::kInternal);  // HTTP 500, not a 429 to retry
}

TEST(RetryBudgetTest, RetriesStayAFractionOfRequestsPlusAFloor) {
  fakes::FakeClock clock;
  RetryBudget budget(clock, {.ratio = 0.2, .min_per_second = 10, .max_balance = 100});
  // Starts full: a burst of 100 retries.
  int retries = 0;
  while (budget.TryRetry()) ++retries;
  EXPECT_EQ(retries, 100);
  // Then 1 retry per 5 requests...
  for (int i = 0; i < 50; ++i) budget.OnRequest();
  retries = 0;
  while (budget.TryRetry()) ++retries;
  EXPECT_EQ(retries, 10);
  // ...plus 10 per second.
  clock.Advance(500ms);
  retries = 0;
  while (budget.TryRetry()) ++retries;
  EXPECT_EQ(retries, 5);
  // Never more than the cap, however long it rests.
  clock.Advance(1h);
  for (int i = 0; i < 1000; ++i) budget.OnRequest();
  retries = 0;
  while (budget.TryRetry()) ++retries;
  EXPECT_EQ(retries, 100);
}

TEST(RetryBackoffTest, GrowsWithJitterUpToTheCap) {
  BackoffOptions options{.base = 10ms, .max = 1s};
  for (uint64_t random : {0ull, 1ull, 12345678901ull, ~0ull}) {
    EXPECT_GE(RetryBackoff(options, 1, random), 5ms);
    EXPECT_LE(RetryBackoff(options, 1, random), 10ms);
    EXPECT_GE(RetryBackoff(options, 3, random), 20ms);
    EXPECT_LE(RetryBackoff(options, 3, random), 40ms);
    EXPECT_GE(RetryBackoff(options, 30, random), 500ms);
    EXPECT_LE(RetryBackoff(options, 30, random), 1s);
  }
  EXPECT_NE(RetryBackoff(options, 2, 1), RetryBackoff(options, 2, 7777777));
}

TEST(FunctionErrorTest, ParsesTheRuntimeErrorBody) {
  auto error = ParseFunctionError(R"({"error":{"type":"KeyError","message":"'x'","extra":1}})",
                                  FunctionErrorHeader::kHandled);
  EXPECT_EQ(error.type, "KeyError");
  EXPECT_EQ(error.message, "'x'");
  EXPECT_TRUE(error.handled);
}

TEST(FunctionErrorTest, UnexpectedBodyBecomesTheMessage) {
  auto error = ParseFunctionError("Traceback: boom", FunctionErrorHeader::kUnhandled);
  EXPECT_EQ(error.message, "Traceback: boom");
  EXPECT_FALSE(error.handled);
  EXPECT_FALSE(error.type.empty());
}

// The message goes into JSON and proto3 strings, which must be UTF-8: bytes that are not become
// U+FFFD, and a long body is cut to 4096 bytes.
TEST(FunctionErrorTest, AnUnexpectedBodyThatIsNotUtf8BecomesValidUtf8) {
  auto error =
      ParseFunctionError("\xff\xfe<b>" + std::string(10000, 'A'), FunctionErrorHeader::kHandled);
  EXPECT_EQ(error.message.substr(0, 9), "\xef\xbf\xbd\xef\xbf\xbd<b>");
  EXPECT_EQ(error.message.size(), 4096u + 4u);  // two bytes became three each
}

}  // namespace
}  // namespace eofaas::proxy
