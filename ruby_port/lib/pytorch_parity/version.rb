# frozen_string_literal: true

module PytorchParity
  VERSION = "0.1.0"
end
