# frozen_string_literal: true

module Hymenoptera
  # Eval-mode logits of a ResNet-18 state dict saved by Python, for the parity suite's foundation test
  # (parity/test_foundation.py): BATCH_STEM is a tensor bundle holding "images" [N,3,224,224]; OUT_STEM
  # receives "logits" and, in its meta, this side's library versions and thread count.
  module Logits
    module_function

    def get_args_parser
      parser = ArgumentParser.new("ruby ruby_port/bin/logits",
                                  description: "Eval-mode logits of a ResNet-18 state dict saved by Python.")
      parser.add_argument("weights", metavar: "WEIGHTS.pth", help: "the state dict")
      parser.add_argument("batch_stem", metavar: "BATCH_STEM", help: "a tensor bundle holding images [N,3,224,224]")
      parser.add_argument("out_stem", metavar: "OUT_STEM", help: "the bundle to write the logits to")
      parser
    end

    def main(argv)
      weights_path, batch_stem, out_stem = get_args_parser.parse_args(argv).values_at(:weights, :batch_stem, :out_stem)
      CLI.load_port # the long work starts here, once the arguments are checked
      state_dict = Weights.read_state_dict(weights_path)
      Weights.validate(state_dict, weights_path)
      model = TorchVision::Models::ResNet18.new
      model.load_state_dict(state_dict)
      model.eval
      images = TensorIO.read_bundle(batch_stem).fetch("images") do
        raise UserError, "#{batch_stem}.json holds no tensor named images; write the batch as {\"images\": [N,3,224,224]}"
      end
      logits = Torch.no_grad { model.call(images) }
      Preprocess.bundle_output(out_stem, "logits", "OUT_STEM").hold do
        TensorIO.write_bundle(out_stem, {"logits" => logits}, meta: RuntimeInfo.describe)
      end
    end
  end
end
