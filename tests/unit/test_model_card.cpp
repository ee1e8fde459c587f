#include <gtest/gtest.h>

#include "model/model_card.h"

using namespace dfd;

TEST(ModelCard, JsonRoundTrip) {
  ModelCard c;
  c.name = "mine";
  c.head = HeadMode::Temporal;
  c.window_size = 40;
  c.threshold = 0.42f;
  c.trained = true;
  c.training_data = "my videos";
  c.metrics_json = R"({"auc":0.9})";
  auto back = ModelCard::from_json(c.to_json());
  EXPECT_EQ(back.name, "mine");
  EXPECT_EQ(back.head, HeadMode::Temporal);
  EXPECT_EQ(back.window_size, 40);
  EXPECT_FLOAT_EQ(back.threshold, 0.42f);
  EXPECT_TRUE(back.trained);
  EXPECT_EQ(back.training_data, "my videos");
  EXPECT_NE(back.metrics_json.find("0.9"), std::string::npos);
  EXPECT_TRUE(back.trust_notice().empty());
}

TEST(ModelCard, RejectsBadCards) {
  EXPECT_THROW(ModelCard::from_json("not json"), std::runtime_error);
  EXPECT_THROW(ModelCard::from_json("[]"), std::runtime_error);
  EXPECT_THROW(ModelCard::from_json(R"({"name":"x"})"), std::runtime_error);  // no 'trained'
  EXPECT_THROW(ModelCard::from_json(R"({"trained":true,"head":"sideways"})"), std::runtime_error);
  EXPECT_THROW(ModelCard::from_json(R"({"trained":true,"input_size":224})"), std::runtime_error);
  EXPECT_THROW(ModelCard::from_json(R"({"trained":true,"window_size":0})"), std::runtime_error);
  EXPECT_THROW(ModelCard::from_json(R"({"trained":"yes"})"), std::runtime_error);
}

TEST(ModelCard, UntrainedCardWarns) {
  ModelCard c;
  c.trained = false;
  EXPECT_NE(c.trust_notice().find("UNTRAINED"), std::string::npos);
}
