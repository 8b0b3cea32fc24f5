# frozen_string_literal: true

module Hymenoptera
  # What the training loop reports to whoever watches it: the trainer watches nothing, the replay and
  # `bin/train --record` record every step (mirrors reference_py/observer.py).
  #
  # The loop calls after_step after each optimizer step (the gradients of that step are still in
  # .grad), after_eval_batch with each evaluation batch's outputs, and after_epoch after the epoch's
  # validation.
  class Observer
    def after_step(model, optimizer, inputs, labels, loss); end

    def after_eval_batch(outputs); end

    def after_epoch(epoch, model, optimizer); end

    # SGD's momentum buffer of every parameter that has one, by parameter name, copied.
    def self.momentum_buffers(model, optimizer)
      model.named_parameters.filter_map do |name, param|
        buffer = optimizer.state.fetch(param, {})[:momentum_buffer]
        [name, buffer.clone] if buffer
      end.to_h
    end
  end

  NO_OBSERVER = Observer.new

  # The state a training step leaves, and how to continue from one (mirrors reference_py/observer.py).
  module TrainingState
    module_function

    # What a step can change, which the next step starts from: each state-dict entry but the frozen
    # parameters ("state/NAME"), each momentum buffer ("momentum/NAME"), and the step's loss ("loss").
    def capture(model, optimizer, loss)
      parameters = model.named_parameters
      state = model.state_dict.reject { |name, _| parameters.key?(name) && !parameters[name].requires_grad }
                   .transform_keys { |name| "state/#{name}" }
      Observer.momentum_buffers(model, optimizer).each { |name, buffer| state["momentum/#{name}"] = buffer }
      state["loss"] = loss.detach
      state
    end

    # Continue from state (capture's layout): its state-dict entries and SGD's momentum buffers.
    def load(model, optimizer, state)
      entries = model.state_dict.merge(
        state.select { |name, _| name.start_with?("state/") }.transform_keys { |name| name.delete_prefix("state/") }
      )
      model.load_state_dict(entries)
      parameters = model.named_parameters
      state.each do |name, buffer|
        next unless name.start_with?("momentum/")

        optimizer.state[parameters.fetch(name.delete_prefix("momentum/"))][:momentum_buffer] = buffer.clone
      end
    end
  end

  # Records, for bundles in fixtures/README.md's run directory layout: the loss of every step
  # (step_losses), the first batch (first_batch), the gradients after the first backward
  # (grads_step1), the momentum buffers after the first step (momentum_step1) and at the end
  # (momentum_last); given states_to:, the state dict after each epoch (state_epoch_K) goes there as
  # the epoch ends; given steps_to:, the training state after every step (after_N, N counting steps
  # from 0 across epochs) goes there. Given resync_from: (another run's steps_to), every step continues
  # from that run's state after the same step instead of its own: each step's error is then its own,
  # not the drift of the steps before.
  class Recorder < Observer
    def initialize(states_to: nil, steps_to: nil, resync_from: nil)
      super()
      @states_to, @steps_to, @resync_from = states_to, steps_to, resync_from
      @step_losses = [[]]
      @first = nil
      @momentum_last = {}
      @steps = 0
    end

    def after_step(model, optimizer, inputs, labels, loss)
      @step_losses.last << loss.item
      @first ||= {
        "first_batch" => {"inputs" => inputs.clone, "labels" => labels.clone},
        "grads_step1" => model.named_parameters.select { |_, p| p.requires_grad }.transform_values { |p| p.grad.clone },
        "momentum_step1" => Observer.momentum_buffers(model, optimizer)
      }
      name = "after_#{@steps}"
      where = {epoch: @step_losses.size - 1, step: @step_losses.last.size - 1}
      if @steps_to
        TensorIO.write_bundle(File.join(@steps_to, name), TrainingState.capture(model, optimizer, loss), meta: where)
      end
      TrainingState.load(model, optimizer, TensorIO.read_bundle(File.join(@resync_from, name))) if @resync_from
      @steps += 1
    end

    def after_epoch(epoch, model, optimizer)
      @step_losses << []
      @momentum_last = Observer.momentum_buffers(model, optimizer)
      TensorIO.write_bundle(File.join(@states_to, "state_epoch_#{epoch}"), model.state_dict) if @states_to
    end

    def write(out)
      (@first || {}).each { |name, tensors| TensorIO.write_bundle(File.join(out, name), tensors) }
      TensorIO.write_bundle(File.join(out, "momentum_last"), @momentum_last)
      TensorIO.write_bundle(File.join(out, "step_losses"),
                            {"step_losses" => Torch.tensor(@step_losses[0...-1], dtype: :float32)})
    end
  end

  # Keeps every evaluation batch's outputs (the replay's initial logits).
  class OutputsRecorder < Observer
    attr_reader :outputs

    def initialize
      super
      @outputs = []
    end

    def after_eval_batch(outputs)
      @outputs << outputs
    end
  end
end
