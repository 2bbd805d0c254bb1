// The baseline routers' classes, shared by baselines.cpp (training, scoring) and router_io.cpp
// (saving, loading). Each trainable class has a second constructor that restores saved state;
// router_io.cpp checks every shape before calling it, so those constructors trust their input.
// Internal header.
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "router/text_features.hpp"
#include "routenlp/router/model.hpp"
#include "routenlp/router/baselines.hpp"
#include "routenlp/router/stacked.hpp"

namespace routenlp::detail {

// Task name -> column, in sorted name order; other tasks share "unknown" (-1).
class TaskIndex {
 public:
  TaskIndex() = default;
  explicit TaskIndex(const RoutingLabels& train);
  // From names in column order: strictly increasing (Error(invalid_argument) otherwise).
  explicit TaskIndex(const std::vector<std::string>& names);
  int find(const std::string& t) const {
    auto it = id_.find(t);
    return it == id_.end() ? -1 : it->second;
  }
  int size() const { return static_cast<int>(id_.size()); }
  std::vector<std::string> names() const;  // in column order

 private:
  std::map<std::string, int> id_;
};

class RandomRouter final : public RouterModel {
 public:
  RandomRouter(std::vector<std::string> tiers, uint64_t seed);
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "random"; }
  std::vector<std::string> tiers() const override { return tiers_; }
  uint64_t seed() const { return seed_; }

 private:
  std::vector<std::string> tiers_;
  uint64_t seed_;
};

class AlwaysRouter final : public RouterModel {
 public:
  AlwaysRouter(std::vector<std::string> tiers, int k);
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "always-" + tiers_[static_cast<size_t>(k_)]; }
  std::vector<std::string> tiers() const override { return tiers_; }
  int tier() const { return k_; }

 private:
  std::vector<std::string> tiers_;
  int k_;
};

class TaskPriorRouter final : public RouterModel {
 public:
  explicit TaskPriorRouter(const RoutingLabels& train);
  // overall and every rates row: one entry per tier.
  TaskPriorRouter(std::vector<std::string> tiers, std::vector<double> overall,
                  std::map<std::string, std::vector<double>> rates);
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "task-prior"; }
  std::vector<std::string> tiers() const override { return tiers_; }
  const std::vector<double>& overall() const { return overall_; }
  const std::map<std::string, std::vector<double>>& rates() const { return rates_; }

 private:
  std::vector<std::string> tiers_;
  std::vector<double> overall_;
  std::map<std::string, std::vector<double>> rates_;
};

class LogRegRouter final : public RouterModel {
 public:
  LogRegRouter(const RoutingLabels& train, const LogRegOptions& opt);
  // w: one vector of feature_count(vec, tasks, opt.task_features) weights per tier; b per tier.
  LogRegRouter(std::vector<std::string> tiers, const LogRegOptions& opt, TfidfVectorizer vec,
               TaskIndex tasks, std::vector<Eigen::VectorXd> w, std::vector<double> b);
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "tfidf-logreg"; }
  std::vector<std::string> tiers() const override { return tiers_; }
  // Columns of the feature matrix: TF-IDF terms (at least 1), or terms + tasks with task features.
  static size_t feature_count(const TfidfVectorizer& vec, const TaskIndex& tasks,
                              bool task_features);
  const LogRegOptions& options() const { return opt_; }
  const TfidfVectorizer& vectorizer() const { return vec_; }
  const TaskIndex& tasks() const { return tasks_; }
  const std::vector<Eigen::VectorXd>& weights() const { return w_; }
  const std::vector<double>& biases() const { return b_; }

 private:
  std::vector<std::string> tiers_;
  LogRegOptions opt_;
  TfidfVectorizer vec_;
  TaskIndex tasks_;
  std::vector<Eigen::VectorXd> w_;
  std::vector<double> b_;
};

class KnnRouter final : public RouterModel {
 public:
  KnnRouter(const RoutingLabels& train, const KnnOptions& opt, TextEmbedder embedder);
  // A TF-IDF kNN: emb rows are the unit-norm (or zero) training vectors, labels[i] has one entry
  // in {-1, 0, 1} per tier, train_task[i] is in [-1, tasks.size()), overall one rate per tier.
  KnnRouter(std::vector<std::string> tiers, const KnnOptions& opt, TfidfVectorizer vec,
            TaskIndex tasks, std::vector<std::vector<int8_t>> labels,
            std::vector<int> train_task, std::vector<double> overall, Eigen::MatrixXf emb);
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return embedder_ ? "knn-encoder" : "knn-tfidf"; }
  std::vector<std::string> tiers() const override { return tiers_; }
  bool uses_embedder() const { return static_cast<bool>(embedder_); }
  const KnnOptions& options() const { return opt_; }
  const TfidfVectorizer* vectorizer() const { return vec_.get(); }  // null with an embedder
  const TaskIndex& tasks() const { return tasks_; }
  const std::vector<std::vector<int8_t>>& labels() const { return labels_; }
  const std::vector<int>& train_task() const { return train_task_; }
  const std::vector<double>& overall() const { return overall_; }
  const Eigen::MatrixXf& embeddings() const { return emb_; }

 private:
  Eigen::MatrixXf embed(const std::vector<RouteQuery>& qs) const;

  std::vector<std::string> tiers_;
  KnnOptions opt_;
  TextEmbedder embedder_;
  TaskIndex tasks_;
  std::unique_ptr<TfidfVectorizer> vec_;
  std::vector<std::vector<int8_t>> labels_;
  std::vector<int> train_task_;
  std::vector<double> overall_;
  Eigen::MatrixXf emb_;
};

class MfRouter final : public RouterModel {
 public:
  MfRouter(const RoutingLabels& train, const MfOptions& opt);
  // P: dim x max(1, vec.dim()); V: tiers x dim; Tm: (tasks + 1) x dim (last row: unknown task);
  // b: one bias per tier.
  MfRouter(std::vector<std::string> tiers, TfidfVectorizer vec, TaskIndex tasks,
           Eigen::MatrixXd P, Eigen::MatrixXd V, Eigen::MatrixXd Tm, Eigen::VectorXd b);
  std::vector<RouterScores> score(const std::vector<RouteQuery>& batch) const override;
  std::string name() const override { return "mf"; }
  std::vector<std::string> tiers() const override { return tiers_; }
  const TfidfVectorizer& vectorizer() const { return vec_; }
  const TaskIndex& tasks() const { return tasks_; }
  const Eigen::MatrixXd& projection() const { return P_; }
  const Eigen::MatrixXd& tier_embeddings() const { return V_; }
  const Eigen::MatrixXd& task_embeddings() const { return Tm_; }
  const Eigen::VectorXd& biases() const { return b_; }

 private:
  std::vector<std::string> tiers_;
  TfidfVectorizer vec_;
  TaskIndex tasks_;
  Eigen::MatrixXd P_, V_, Tm_;
  Eigen::VectorXd b_;
};

// The bases and weights of a router made by make_stacked_router (stacked_router.cpp); false
// for any other router.
bool stacked_parts(const RouterModel& router,
                   std::vector<std::shared_ptr<const RouterModel>>& bases, StackWeights& weights);

}  // namespace routenlp::detail
