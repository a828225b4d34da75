// The TypeScript snippet of the seed's "Pay as you go" page, as plain JavaScript
// (its only TypeScript is its syntax: the calls are the same), so Node 20 runs it
// as is. Adapted only so that the platform, the key, the model and the message come
// from the environment: BASE_URL, API_KEY, MODEL, CONTENT. Then a streaming variant
// of the same call, with usage.
//
// Output, one JSON object per line on stdout:
//   {"type": "message", "message": {...}}   what the snippet logs
//   {"type": "usage", "usage": {...}}       the usage of that completion
//   {"type": "chunk", "text": "..."}        each streamed chunk's text
//   {"type": "stream_usage", "usage": {...}} the final chunk's usage
import OpenAI from "openai";

const openai = new OpenAI({
  baseURL: process.env.BASE_URL,
  apiKey: process.env.API_KEY,
});

const model = process.env.MODEL ?? "openai/gpt-5";
const content = process.env.CONTENT ?? "What is the meaning of life?";

function emit(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

async function main() {
  const completion = await openai.chat.completions.create({
    model,
    messages: [
      {
        role: "user",
        content,
      },
    ],
  });

  emit({ type: "message", message: completion.choices[0].message });
  emit({ type: "usage", usage: completion.usage });
}

async function mainStreaming() {
  const stream = await openai.chat.completions.create({
    model,
    messages: [
      {
        role: "user",
        content,
      },
    ],
    stream: true,
    stream_options: { include_usage: true },
  });

  for await (const chunk of stream) {
    const text = chunk.choices[0]?.delta?.content;
    if (text) {
      emit({ type: "chunk", text });
    }
    if (chunk.usage) {
      emit({ type: "stream_usage", usage: chunk.usage });
    }
  }
}

await main();
await mainStreaming();
