// A libtorch autograd node whose backward pass is a Rust function: how the host's native
// kernels (weightlab-kernels) join libtorch's graph. `tch` binds libtorch's operators but not
// custom autograd functions (nor the fused optimiser kernels, at the end), so this file is the
// one piece of C++ the host compiles.
//
// The Rust side computes an operation's output itself, then calls `wl_native_attach` with the
// inputs, an operation code and integer parameters: the returned tensor is the output with a
// grad_fn that calls `backward` (a Rust function) with the saved inputs and the output's
// gradient. Every C++ exception stays on this side: errors come back as a message.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_adamw.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstring>
#include <string>
#include <vector>

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

extern "C" {
// Fills grads[i] (a new tensor, or null for none) for each of the n saved inputs whose
// needs[i] is set; returns 0, or nonzero with a message of at most err_len bytes in err.
typedef int (*wl_backward_fn)(int64_t op, const int64_t* params, int64_t n_params, at::Tensor* const* saved, int64_t n, const at::Tensor* grad, const bool* needs,
                              at::Tensor** grads, char* err, int64_t err_len);
}

namespace {

void copy_message(const char* what, char* err, int64_t err_len) {
  if (err_len <= 0) return;
  std::strncpy(err, what, static_cast<size_t>(err_len - 1));
  err[err_len - 1] = '\0';
}

struct Native : public torch::autograd::Function<Native> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor out, at::TensorList inputs, int64_t op, std::vector<int64_t> params, int64_t backward) {
    ctx->save_for_backward(inputs.vec());
    ctx->saved_data["op"] = op;
    ctx->saved_data["params"] = params;
    ctx->saved_data["backward"] = backward;
    ctx->saved_data["inputs"] = static_cast<int64_t>(inputs.size());
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    auto params = ctx->saved_data["params"].toIntVector();
    auto fn = reinterpret_cast<wl_backward_fn>(ctx->saved_data["backward"].toInt());
    int64_t n = static_cast<int64_t>(saved.size());
    std::vector<at::Tensor*> saved_ptrs;
    std::unique_ptr<bool[]> needs(new bool[n]);
    for (int64_t i = 0; i < n; ++i) {
      saved_ptrs.push_back(&saved[i]);
      // Input i is argument i + 1 of forward (after `out`).
      needs[i] = ctx->needs_input_grad(static_cast<size_t>(i + 1));
    }
    std::vector<at::Tensor*> grads(static_cast<size_t>(n), nullptr);
    at::Tensor grad = grad_outputs[0].defined() ? grad_outputs[0] : at::Tensor();
    char err[512] = {0};
    int rc = fn(ctx->saved_data["op"].toInt(), params.data(), static_cast<int64_t>(params.size()), saved_ptrs.data(), n, &grad, needs.get(), grads.data(), err, sizeof err);
    variable_list result;
    result.emplace_back();  // `out`: no gradient
    for (auto* g : grads) {
      if (g != nullptr) {
        result.push_back(*g);
        delete g;
      } else {
        result.emplace_back();
      }
    }
    TORCH_CHECK(rc == 0, "native backward: ", err);
    // op, params, backward: no gradients.
    result.emplace_back();
    result.emplace_back();
    result.emplace_back();
    return result;
  }
};

}  // namespace

extern "C" {

// task(ctx, i) for every i in 0..n on libtorch's intra-op threads; returns when all returned.
// The task must not throw (the Rust side catches its panics).
typedef void (*wl_task_fn)(void* ctx, int64_t i);

int wl_parallel_for(int64_t n, wl_task_fn task, void* ctx, char* err, int64_t err_len) {
  try {
    at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) task(ctx, i);
    });
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), err, err_len);
    return 1;
  }
}

// `out` joined to the graph of `inputs` (n of them): a new tensor, or null with a message.
at::Tensor* wl_native_attach(const at::Tensor* out, at::Tensor* const* inputs, int64_t n, int64_t op, const int64_t* params, int64_t n_params, wl_backward_fn backward,
                             char* err, int64_t err_len) {
  try {
    variable_list in;
    for (int64_t i = 0; i < n; ++i) in.push_back(*inputs[i]);
    std::vector<int64_t> p(params, params + n_params);
    // A TensorList (not a vector) is what autograd recognises as tensor inputs.
    return new at::Tensor(Native::apply(*out, at::TensorList(in), op, p, reinterpret_cast<int64_t>(backward)));
  } catch (const std::exception& e) {
    copy_message(e.what(), err, err_len);
    return nullptr;
  }
}

// One Adam (decoupled == 0) or AdamW step over those of the n parameters that have a gradient,
// in libtorch's fused CPU kernel: one pass over each parameter, its gradient and moments, as
// PyTorch's `fused=True` (tch binds only the C++ optimisers, eight passes). `steps[i]` is
// parameter i's step count, a float scalar tensor, counted here. Returns 0, or nonzero with a
// message of at most err_len bytes in err.
int wl_fused_adam(at::Tensor* const* params, at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs, at::Tensor* const* steps, int64_t n, double lr, double beta1, double beta2,
                  double weight_decay, double eps, int decoupled, char* err, int64_t err_len) {
  try {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> p, g, m, v, s;
    for (int64_t i = 0; i < n; ++i) {
      const at::Tensor& grad = params[i]->grad();
      if (!grad.defined()) continue;
      p.push_back(*params[i]);
      g.push_back(grad);
      m.push_back(*exp_avgs[i]);
      v.push_back(*exp_avg_sqs[i]);
      s.push_back(*steps[i]);
    }
    if (p.empty()) return 0;
    for (auto& t : s) t.add_(1);
    if (decoupled != 0) {
      at::_fused_adamw_(p, g, m, v, {}, s, lr, beta1, beta2, weight_decay, eps, false, false);
    } else {
      at::_fused_adam_(p, g, m, v, {}, s, lr, beta1, beta2, weight_decay, eps, false, false);
    }
    return 0;
  } catch (const std::exception& e) {
    copy_message(e.what(), err, err_len);
    return 1;
  }
}

// Drops the gradients of the n parameters (PyTorch's `zero_grad(set_to_none=True)`).
void wl_clear_grads(at::Tensor* const* params, int64_t n) {
  for (int64_t i = 0; i < n; ++i) params[i]->mutable_grad().reset();
}
}
