# frozen_string_literal: true

# Fix: torch.rb 0.12, Torch::NN::Module#state_dict (lib/torch/nn/module.rb)
# Bug: its tensors are the live parameters, as PyTorch's are, but Ruby's deep copy (Marshal) refuses
#   them where the tutorial's copy.deepcopy(model.state_dict()) copies them
# Reproduction:
#   model = Torch::NN::Linear.new(1, 1)
#   best = Marshal.load(Marshal.dump(model.state_dict))
#   Torch.no_grad { model.weight.add!(1) }
#   (model.weight - best["weight"]).sum.item
# Upstream gives: raises TypeError
# Python gives: 1.0
# In Python: model = torch.nn.Linear(1, 1); best = copy.deepcopy(model.state_dict()); model.weight.data.add_(1); (model.weight - best["weight"]).sum().item()

module Hymenoptera
  # Python's copy.deepcopy(model.state_dict()). torch.rb's Module#state_dict returns the live
  # parameters and buffers themselves, so keeping it would keep nothing: the next step changes them.
  module StateDict
    module_function

    def copy(model_or_state)
      state = model_or_state.is_a?(Hash) ? model_or_state : model_or_state.state_dict
      state.transform_values { |tensor| tensor.detach.clone }
    end
  end
end
