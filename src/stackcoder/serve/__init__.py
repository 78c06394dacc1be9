"""`stackcoder serve`: completions for editors and scripts in the TGI, OpenAI and llama.cpp shapes."""
