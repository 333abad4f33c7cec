// The page's only script: calls the /v1 API with fetch and draws the answers.
"use strict";

const $ = (id) => document.getElementById(id);
const cameraShots = { enroll: [], identify: null };

$("token").value = sessionStorage.getItem("facenet_tf_token") || "";
$("token").addEventListener("change", () => sessionStorage.setItem("facenet_tf_token", $("token").value));

function say(id, text, isError) {
  $(id).textContent = text;
  $(id).classList.toggle("error", Boolean(isError));
}

async function call(method, path, form) {
  const headers = {};
  const token = $("token").value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { method, headers, body: form });
  let body = {};
  try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
  if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
  return body;
}

async function snapshot() {
  // One frame of the camera as a JPEG blob (where the browser offers a camera).
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("no camera in this browser");
  const video = $("camera");
  const stream = await navigator.mediaDevices.getUserMedia({ video: true });
  try {
    video.srcObject = stream;
    video.style.display = "block";
    await video.play();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    return await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  } finally {
    stream.getTracks().forEach((t) => t.stop());
    video.style.display = "none";
  }
}

async function enroll() {
  const name = $("enroll-name").value.trim();
  const form = new FormData();
  form.append("name", name);
  for (const file of $("enroll-files").files) form.append("image", file);
  cameraShots.enroll.forEach((blob, i) => form.append("image", blob, "camera" + i + ".jpg"));
  say("enroll-status", "enrolling…");
  try {
    const answer = await call("POST", "/v1/enroll", form);
    say("enroll-status", "enrolled " + answer.enrolled + " photo(s) of " + answer.name);
    cameraShots.enroll = [];
    $("enroll-files").value = "";
    await refreshPeople();
  } catch (err) { say("enroll-status", err.message, true); }
}

function drawFaces(bitmap, faces) {
  const canvas = $("identify-canvas");
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(bitmap.width / 150));
  ctx.lineWidth = line;
  ctx.font = Math.max(12, 6 * line) + "px sans-serif";
  for (const face of faces) {
    const [l, t, r, b] = face.box;
    ctx.strokeStyle = face.name ? "#00c853" : "#ff1744";
    ctx.strokeRect(l, t, r - l, b - t);
    const label = face.name || "unknown";
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillText(label, l + line, Math.max(t - line, 12 + line));
  }
}

async function identify() {
  const file = $("identify-file").files[0] || cameraShots.identify;
  if (!file) { say("identify-status", "choose a photo first", true); return; }
  const form = new FormData();
  form.append("image", file, file.name || "camera.jpg");
  say("identify-status", "identifying…");
  $("identify-result").replaceChildren();
  try {
    const answer = await call("POST", "/v1/identify", form);
    drawFaces(await createImageBitmap(file), answer.faces);
    for (const face of answer.faces) {
      const item = document.createElement("li");
      const distance = face.distance === null ? "empty gallery" : "distance " + face.distance.toFixed(3);
      item.textContent = (face.name || "unknown") + " (" + distance + ")";
      item.className = "face";
      $("identify-result").append(item);
    }
    say("identify-status", answer.faces.length ? answer.faces.length + " face(s)" : "no face found");
  } catch (err) { say("identify-status", err.message, true); }
  cameraShots.identify = null;
}

async function refreshPeople() {
  try {
    const answer = await call("GET", "/v1/people");
    const items = answer.people.map((person) => {
      const item = document.createElement("li");
      item.textContent = person.name + " (" + person.images + " photo(s))";
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", async () => {
        try {
          await call("DELETE", "/v1/people/" + encodeURIComponent(person.name));
          await refreshPeople();
        } catch (err) { say("people-status", err.message, true); }
      });
      item.append(remove);
      return item;
    });
    $("people").replaceChildren(...items);
    say("people-status", answer.people.length ? "" : "nobody enrolled yet");
  } catch (err) { say("people-status", err.message, true); }
}

$("enroll-button").addEventListener("click", enroll);
$("identify-button").addEventListener("click", identify);
$("people-refresh").addEventListener("click", refreshPeople);
$("enroll-camera").addEventListener("click", async () => {
  try { cameraShots.enroll.push(await snapshot()); say("enroll-status", cameraShots.enroll.length + " camera photo(s) ready"); }
  catch (err) { say("enroll-status", err.message, true); }
});
$("identify-camera").addEventListener("click", async () => {
  try { cameraShots.identify = await snapshot(); $("identify-file").value = ""; await identify(); }
  catch (err) { say("identify-status", err.message, true); }
});
refreshPeople();
