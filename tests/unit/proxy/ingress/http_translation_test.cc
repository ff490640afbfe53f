// The HTTP ingress's wire format: routes, bodies, and statuses and outcomes as answers.
#include "proxy/ingress/http_translation.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace eofaas::proxy {
namespace {

TEST(InvokeRouteTest, NamesTheFunctionOfTheInvokePathOnly) {
  EXPECT_EQ(InvokeRoute("/v1/functions/linecount:invoke"), "linecount");
  EXPECT_EQ(InvokeRoute("/v1/functions/Odd_Name:invoke"), "Odd_Name");  // judged later
  EXPECT_EQ(InvokeRoute("/v1/functions/:invoke"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/v1/functions/a/b:invoke"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/v1/functions/linecount"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/v1/functions/linecount:invoke?x=1"), std::nullopt);
  EXPECT_EQ(InvokeRoute("/"), std::nullopt);
}

TEST(RejectRequestLineTest, AnswersAnythingButAJsonPostToTheRoute) {
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", ""), std::nullopt);
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "application/json; charset=utf-8"),
            std::nullopt);
  EXPECT_EQ(RejectRequestLine("POST", "/metrics", "")->status, 404);
  std::optional<HttpAnswer> get = RejectRequestLine("GET", "/v1/functions/f:invoke", "");
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(get->status, 405);
  EXPECT_EQ(get->headers, (std::vector<std::pair<std::string, std::string>>{{"Allow", "POST"}}));
  EXPECT_EQ(RejectRequestLine("POST", "/v1/functions/f:invoke", "text/csv")->status, 415);
}

TEST(ParseInvokeBodyTest, ReadsCursorArgsAndTimeout) {
  auto request = ParseInvokeBody("f", R"({"cursor": {"uri": "file:///d/x", "offset": "10",
      "length": 5, "framing": "FRAMING_LINES"}, "args": {"k": [1, "two"]}, "timeout": "1.5s"})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->function(), "f");
  EXPECT_EQ(request->cursor().uri(), "file:///d/x");
  EXPECT_EQ(request->cursor().offset(), 10);
  EXPECT_EQ(request->cursor().length(), 5);
  EXPECT_EQ(request->cursor().framing(), eofaas::v1::FRAMING_LINES);
  EXPECT_EQ(request->args().fields().at("k").list_value().values(1).string_value(), "two");
  EXPECT_EQ(request->timeout().seconds(), 1);
  EXPECT_EQ(request->timeout().nanos(), 500'000'000);
}

TEST(ParseInvokeBodyTest, RejectsWhatIsNotSuchAnObject) {
  for (const char* body :
       {"", "[]", "{", R"({"cursor": 3})", R"({"unknown": 1})", R"({"function": "g"})"}) {
    SCOPED_TRACE(body);
    auto request = ParseInvokeBody("f", body);
    EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(request.status().message(), "body:")) << request.status();
  }
}

TEST(HttpStatusOfTest, MapsEveryCodeTheIngressReturns) {
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusOf(absl::StatusCode::kInternal), 500);
}

TEST(InvokeAnswerTest, ResultsFunctionErrorsAndFailures) {
  eofaas::v1::InvokeResponse response;
  response.set_result(std::string("\x00\xff bytes", 8));
  response.set_replica("127.0.0.1:9001");
  response.set_attempts(2);
  HttpAnswer result = InvokeAnswer(absl::OkStatus(), response);
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, std::string("\x00\xff bytes", 8));
  EXPECT_EQ(result.content_type, "application/octet-stream");
  EXPECT_EQ(result.headers,
            (std::vector<std::pair<std::string, std::string>>{
                {"X-Eofaas-Replica", "127.0.0.1:9001"}, {"X-Eofaas-Attempts", "2"}}));

  response.mutable_error()->set_type("ValueError");
  response.mutable_error()->set_message("bad \"input\"\n");
  HttpAnswer error = InvokeAnswer(absl::OkStatus(), response);
  EXPECT_EQ(error.status, 200);
  EXPECT_EQ(error.body, R"({"error":{"type":"ValueError","message":"bad \"input\"\n"}})");
  EXPECT_EQ(error.headers.back(),
            (std::pair<std::string, std::string>{"X-Eofaas-Function-Error", "unhandled"}));

  HttpAnswer failure =
      InvokeAnswer(absl::DeadlineExceededError("no answer within 300ms"), response);
  EXPECT_EQ(failure.status, 504);
  EXPECT_EQ(failure.content_type, "application/json");
  EXPECT_EQ(failure.body,
            R"({"error":{"code":"DEADLINE_EXCEEDED","message":"no answer within 300ms"}})");
}

}  // namespace
}  // namespace eofaas::proxy
