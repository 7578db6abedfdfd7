"""`megalith compress`: a trained run made smaller and faster, each step measured."""
