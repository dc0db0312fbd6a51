import { useState } from "react";

const GREETINGS = ["Hello", "Hallo", "Bonjour", "Hola", "Ciao", "こんにちは"];

export default function App() {
  const [count, setCount] = useState(0);
  const greeting = GREETINGS[count % GREETINGS.length];

  return (
    <main className="card">
      <h1>{greeting}, world</h1>
      <p>A small React app, built with Vite.</p>
      <button type="button" onClick={() => setCount((c) => c + 1)}>
        Clicked {count} {count === 1 ? "time" : "times"}
      </button>
    </main>
  );
}
