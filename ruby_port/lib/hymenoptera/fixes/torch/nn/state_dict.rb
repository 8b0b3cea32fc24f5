# frozen_string_literal: true

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
